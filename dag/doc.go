// Package dag turns a file into encrypted, content-addressed blocks and back.
// It is a pure transform over io.Reader/io.Writer and two small block
// interfaces ([BlockPutter], [BlockGetter]); it knows nothing of disks or
// networks. docs/format.md specifies every byte.
//
// # Chunks
//
// A file is cut into fixed-size chunks (1 MiB by default). Each chunk is
// padded to a multiple of 4 KiB and sealed with AES-256-GCM under a
// convergent key, a labelled HMAC-SHA256 of its plaintext under the node's
// convergence secret, so the same file added twice on one node gives the
// same blocks.
//
// # Manifest
//
// The manifest (name, size, mode, media type, chunk size, and per chunk its
// key and length) is a tree of manifest blocks of at most [DefaultFanout]
// links each. Every manifest block carries its links and its height in the
// clear, so a peer without keys can walk, fetch, pin and verify a file, and
// everything else sealed under its own convergent key, derived from its
// links and height as well as its body. The root's key is the file key; the
// root also carries it wrapped under a subkey of the owner's master key,
// bound to that root.
//
// # Capabilities
//
// A [Capability] (root CID plus file key) opens a file on any node. A bare
// CID opens only the owner's files ([OpenOwned]), which checks that the file
// key is the one the owner's convergence secret derives, so that a root
// forged by a capability holder around the owner's wrapped key is refused;
// anyone else sees ciphertext.
//
// # Versions
//
// Blocks of [FormatVersion] 2 are written; version-1 blocks are still read.
// What differs between them lives in one place (version.go).
//
// Usage:
//
//	added, err := dag.Add(ctx, file, dag.Meta{Name: "a.pdf"}, secrets, store, dag.AddOptions{})
//	f, err := dag.OpenFile(ctx, store, added.Root, added.Key)
//	_, err = f.WriteTo(ctx, os.Stdout, store, dag.ReadOptions{})
package dag
