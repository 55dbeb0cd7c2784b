// Package core holds what the layers above the node share with it: the
// plain values that a node's operations return ([FileInfo], [AddResult],
// [StatusInfo], ...), the small interfaces by concern that a node
// implements and the API serves ([Files], [Blocks], [Repo], [Network]), and
// the classification of errors by what a user can do about them ([Kind],
// [KindOf]).
//
// It exists so that package api and the CLI depend on these contracts, not
// on package node: the daemon's API client implements the same interfaces as
// an offline node, and a test fakes only the concern it exercises.
//
// # Concerns
//
//   - [Files]: add, cat, ls, share, refs: the user's files.
//   - [Blocks]: raw encrypted blocks of the local store.
//   - [Repo]: verify, gc and stat of the local repo.
//   - [Network]: the node's identity, peers and replicas; offline these
//     return [ErrOffline].
//
// [Backend] is all four: what `casd` commands run on.
package core
