// Package replicate keeps a node's files on the peers that hold them for
// it.
//
// # Placement
//
// [Replicator.Replicate] pushes a root over /cas/store/1.0 to peers that
// accept it, until the replication goal is met: half of the goal taken
// from the peers closest to its CID, the rest at random, preferring peers
// that proved holding files before. Each store offer grants a lease. A
// peer's claim to hold a root (it already holds it, or acknowledged it
// whole) counts only once it answers a storage challenge ([Auditor]).
//
// # Checks
//
// The repair loop checks every root the node owns each check interval
// (jittered ±20%), and the roots short of their goal each retry interval;
// [Replicator.Check] runs one check now. A check challenges each known
// replica on a random block (the light audit); every audit interval per
// replica it asks for one proof over every block of the tree (the tree
// audit), which a replica that lost any block cannot give; it renews the
// leases that have less than half left; and it places the root on new
// peers where fewer than the goal passed. A replica that fails, does not
// answer, or refuses a renewal no longer counts and is forgotten.
//
// # State
//
// The replicas of each owned root, with the times of their last audits and
// their lease, live in memory, bounded by the owner's pins and, per root,
// by the goal plus a few. After a restart they are rebuilt from the hints
// and the provider lookup, and each must pass a challenge before it
// counts. A root short of its goal is pending, recorded as a pin of reason
// [PinPending], so that a restart goes on with it.
//
// # Removal
//
// [Replicator.Remove] asks every replica it knows of, or finds, to drop a
// root the owner no longer keeps.
package replicate
