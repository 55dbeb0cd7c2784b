// Package config owns a casd repo on disk: its layout, the JSON config file
// with its defaults and profiles, the node's identity and secret keys, the
// repo version, and the repo lock.
//
// A typical caller resolves the repo path, opens it and takes the lock:
//
//	dir, err := config.ResolvePath(flagRepo)
//	r, err := config.Open(dir)
//	release, err := r.Lock()
//	defer release()
//
// config imports no other casd package but internal/fsutil (atomic writes);
// every other package may import it.
//
// # Repo layout
//
// A repo is one directory (see [ResolvePath]):
//
//	version              "1\n", the on-disk format version ([RepoVersion])
//	config               the JSON [Config], mode 0600
//	keys/                mode 0700
//	keys/identity        libp2p Ed25519 private key (crypto.MarshalPrivateKey), 0600
//	keys/master          32 random bytes, 0600: wraps file keys, derives the owner key
//	keys/convergence     32 random bytes, 0600: convergent chunk-key secret
//	blocks/              flat-file blocks, owned by blockstore ([Repo.BlocksDir])
//	datastore/meta.db    block metadata, owned by blockstore ([Repo.MetaPath])
//	repo.lock            locked file holding the holder's pid (not on Windows) ([Repo.Lock])
//	api.sock             the daemon's unix socket, 0600 on unix ([Repo.APISocketPath])
//	peers.json           recently connected peers' signed records, 0600, owned by the node's gossip ([Repo.PeersPath])
//
// Every file config writes goes to a temporary file that is fsynced, renamed
// into place, and whose directory is then fsynced, so a crash leaves either
// the old or the new file, never a torn one. [Init] never leaves half a repo
// behind: on failure it removes whatever it created, and nothing else.
//
// # Config
//
// [Config] is the JSON config file. Its JSON field names are the Go field
// names, as in kubo, and keys are addressed in dotted form
// ("Replication.Factor", "Addresses.Swarm") by [Config.Get] and
// [Config.Set]. Decoding is strict: an unknown field is an error, so a typo
// in a hand-edited file does not silently fall back to a default. The one
// exception is the retired keys Addresses.API and Replication.RepairInterval,
// which casd init once wrote into every config file but nothing reads:
// [Parse] drops them, so an older repo still opens, and the next
// [Repo.SaveConfig] leaves them out. They come back with the features that
// read them (Gossip, retired the same way, came back with the peer exchange:
// the keys of an older file decode into [Gossip] again). Secrets
// never live in the config file (they are the key files), so showing the
// whole config is safe.
//
// # Profiles
//
// [DefaultConfig] builds a config from a profile: "default" (a desktop
// behind a NAT: mDNS, port mapping and hole punching on), "server" (a
// publicly reachable host: relay service on, mDNS and port mapping off) and
// "local" (loopback only, random ports, for tests and experiments). No
// profile has bootstrap peers: there is no public casd network yet.
//
// # Keys
//
// [Keys] holds the master key and the convergence secret. [Init] generates
// them, or restores given ones ([InitOptions].Keys), so that a node restored
// from an exported key file opens its owner's files and takes over their
// repair. The libp2p identity is always generated fresh: a peer ID belongs to
// a machine, ownership belongs to the master key.
package config
