// Package peers holds what a node remembers of other peers, in memory and
// bounded: [Strikes], the bad input each peer sent, which disconnects a
// peer that sends too much; [Hints], the peers known to hold a root,
// which a read asks before the DHT's providers; and [Proven], the peers
// that answered a storage challenge, which placement prefers; and
// [Sources], how the node learned of each peer it knows and when it last
// heard of it, which `casd peers --all` shows.
package peers
