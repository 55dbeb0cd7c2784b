package core

import (
	"errors"
	"time"
)

// The values below are what the node's operations return. They are plain
// data with JSON tags: the API serves them as they are, and the CLI prints
// them.

// FileInfo describes an opened file.
type FileInfo struct {
	Cid       string `json:"cid"`
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Mode      uint32 `json:"mode"`
	MediaType string `json:"mediaType"`
}

// AddResult is the result of Add.
type AddResult struct {
	FileInfo
	Capability string `json:"capability"`
	// Replicas are the peers that acknowledged the whole file (online only).
	Replicas []string `json:"replicas,omitempty"`
	// Goal is the replication factor asked for (online only).
	Goal int `json:"goal,omitempty"`
}

// ListEntry is one of the node's own files.
type ListEntry struct {
	Cid   string    `json:"cid"`
	Name  string    `json:"name"`
	Size  int64     `json:"size"`
	Added time.Time `json:"added"`
}

// BlockStat describes one block.
type BlockStat struct {
	Cid  string `json:"cid"`
	Size int    `json:"size"`
}

// VerifyReport is the result of RepoVerify.
type VerifyReport struct {
	Checked int      `json:"checked"`
	Corrupt []string `json:"corrupt"`
	Missing []string `json:"missing"`
}

// GCResult is the result of RepoGC.
type GCResult struct {
	Removed int   `json:"removed"`
	Freed   int64 `json:"freed"`
}

// RepoStat is the result of RepoStat.
type RepoStat struct {
	Path    string `json:"path"`
	Version int    `json:"version"`
	Blocks  int    `json:"blocks"`
	Bytes   int64  `json:"bytes"` // every block held: Own + Offered + Cached
	Pins    int    `json:"pins"`
	Files   int    `json:"files"`
	// Own is the bytes of the node's own files (pins "owner" and
	// "pending-replication"), Offered those held for other owners
	// (replica pins) and not own, Cached the rest (blocks no such pin
	// reaches: read caches, leftovers GC will take). Each block counts
	// once.
	Own     int64 `json:"own"`
	Offered int64 `json:"offered"`
	Cached  int64 `json:"cached"`
	// Quota is Storage.Quota, the cap on Offered; FreeToOffer is what is
	// left of it.
	Quota       int64 `json:"quota"`
	FreeToOffer int64 `json:"freeToOffer"`
}

// IDInfo is the result of ID.
type IDInfo struct {
	ID           string   `json:"id"`
	Addrs        []string `json:"addrs"`
	AgentVersion string   `json:"agentVersion"`
	Protocols    []string `json:"protocols"`
}

// PeerInfo is one peer of Peers.
type PeerInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Connected bool     `json:"connected"`
	// Sources says how the node learned of the peer: any of "dht",
	// "gossip", "mdns", "bootstrap", "remembered" and "inbound", in that
	// order; empty (never null) when it does not know.
	Sources []string `json:"sources"`
	// LastSeen is when the node last heard of the peer (it connected,
	// left, or was named by a source): now for a connected peer, zero
	// when never.
	LastSeen time.Time `json:"last_seen"`
}

// StatusInfo is the result of Status.
type StatusInfo struct {
	Cid      string   `json:"cid"`
	Goal     int      `json:"goal"`
	Replicas []string `json:"replicas"`
	// Verified reports that every peer in Replicas proved, by a storage
	// challenge, that it holds the file. It is false when the node asked
	// does not hold the file itself (a reader with a bare capability): it
	// cannot check, and lists the peers' claims as made.
	Verified bool `json:"verified"`
	// LastCheck is when the owner's repair loop last checked the file's
	// replicas; zero on a node that does not own it, or before the first
	// check.
	LastCheck time.Time `json:"lastCheck,omitzero"`
	// Holders describes each peer of Replicas. On the owner's node it
	// comes from the repair loop's state; elsewhere it only repeats the
	// claims.
	Holders []HolderInfo `json:"holders"`
}

// HolderInfo is one peer that holds a file, as its owner knows it.
type HolderInfo struct {
	ID string `json:"id"`
	// Verified reports that the peer passed a storage challenge on the file.
	Verified bool `json:"verified"`
	// LastAudit is the time of its last passed single-block challenge.
	LastAudit time.Time `json:"lastAudit,omitzero"`
	// LastTreeAudit is the time of its last passed proof over the whole tree.
	LastTreeAudit time.Time `json:"lastTreeAudit,omitzero"`
	// LeaseExpires is when the lease the owner granted it ends.
	LeaseExpires time.Time `json:"leaseExpires,omitzero"`
}

// RepairReport is the outcome of one check of a root's replicas (Repair).
type RepairReport struct {
	Cid  string `json:"cid"`
	Goal int    `json:"goal"`
	// Live are the replicas that passed the check, new ones included.
	Live []string `json:"live"`
	// Added are the replicas placed by this check.
	Added []string `json:"added"`
	// Dropped are the replicas that failed the check and no longer count.
	Dropped []string `json:"dropped"`
}

// AddOptions are the per-call options of Add.
type AddOptions struct {
	Name      string // base name recorded in the manifest
	Mode      uint32 // permission bits
	MediaType string // "" to detect
	// Progress, if set, is called with the plaintext bytes stored so far.
	Progress func(stored int64)
}

// Sentinel errors of the node's operations; the API and the CLI map them
// to statuses and exit codes through [KindOf].
var (
	// ErrOffline is returned by network operations on a node without a host.
	ErrOffline = errors.New("node: this command needs the daemon (run 'casd daemon')")
	// ErrNotOwned is returned by Share for a file this node cannot open.
	ErrNotOwned = errors.New("node: not one of this node's files")
	// ErrNotMine is returned by Remove and Repair for a root that this
	// node neither pins as its own file nor can open with its keys.
	ErrNotMine = errors.New("node: not one of this node's files")
	// ErrBadInput is returned for a malformed argument (CID, multiaddr).
	ErrBadInput = errors.New("node: bad input")
	// ErrUnderReplicated describes an add whose file reached fewer replicas
	// than its goal: Add returns no error then (the file is stored, and the
	// node keeps trying), but [AddResult] shows it, and the CLI fails with
	// this error.
	ErrUnderReplicated = errors.New("fewer replicas than the goal")
)
