package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Profile names accepted by [DefaultConfig] and [InitOptions].
const (
	ProfileDefault = "default"
	ProfileLocal   = "local"
	ProfileServer  = "server"
)

// Profiles lists the valid profile names, in the order they are documented.
var Profiles = []string{ProfileDefault, ProfileLocal, ProfileServer}

// Limits enforced by [Config.Validate].
const (
	MaxReplicationFactor = 20
	MinChunkSize         = 256 << 10
	MaxChunkSize         = 4 << 20
)

// Config is the repo's JSON config file. JSON field names are the Go field
// names. A Config is a plain value: it is not safe for concurrent mutation,
// and [Config.Set] returns a new one instead of changing its receiver.
type Config struct {
	Identity    Identity
	Addresses   Addresses
	Bootstrap   []string // multiaddrs ending in /p2p/<peer id>
	Discovery   Discovery
	Replication Replication
	Chunker     Chunker
	Storage     Storage
	Swarm       Swarm
	Gossip      Gossip
}

// Identity names the node. The private key lives in keys/identity, never here.
type Identity struct {
	// PeerID is derived from keys/identity; [Open] checks that they match
	// and [Config.Set] refuses to change it.
	PeerID string
}

// Addresses lists where the node listens and what it tells others.
type Addresses struct {
	Swarm    []string // libp2p listen multiaddrs
	Announce []string // if non-empty, announced instead of the listen addresses
}

// Discovery configures how the node finds peers besides gossip.
type Discovery struct {
	// MDNS announces the node on the LAN and connects to the casd peers
	// found there.
	MDNS bool
	// WithoutDHT keeps the DHT out of peer discovery: its routing table
	// stays empty and its queries learn no peers, so the node finds peers
	// by gossip, mDNS, bootstrap and remembered peers alone. For tests of
	// gossip; a node run this way cannot place replicas by XOR distance.
	WithoutDHT bool
}

// Replication configures how many peers hold each root besides the owner,
// and how the owner keeps them: a light check of every replica each
// CheckInterval, a full audit of each replica's whole tree each
// AuditInterval, and the lease it grants (and renews) on each replica.
// A zero (or absent, in a config file written before the key existed)
// duration means its default.
type Replication struct {
	Factor int // 0..20; 0 keeps files local only
	// CheckInterval is the period of the repair loop's light check: at
	// least 1s; the loop jitters it by ±20%.
	CheckInterval Duration
	// AuditInterval is the least time between two full (tree) audits of
	// one replica, jittered like CheckInterval.
	AuditInterval Duration
	// Lease is how long a replica is granted; the owner renews it when
	// less than half is left. At least 10s.
	Lease Duration
}

// Chunker configures how files are split.
type Chunker struct {
	Size int // bytes; a power of two between 256 KiB and 4 MiB
}

// Storage configures the space this node offers to others.
type Storage struct {
	Quota int64 // bytes offered to other nodes' roots; 0 stores nothing for others
	// MaxPinsPerOwner caps the replica pins kept for one owner key: an
	// offer of a new root from an owner at the cap is refused. 0 (or a
	// config file written before the key existed) means
	// DefaultMaxPinsPerOwner.
	MaxPinsPerOwner int
	// CollectInterval is the least time between two background GCs, which
	// a store stream that ends without pinning its root asks for. 0 (or
	// absent) means DefaultCollectInterval.
	CollectInterval Duration
}

// Swarm configures the libp2p host.
type Swarm struct {
	ConnMgr      ConnMgr
	RelayService bool // act as a circuit relay v2 for others
	NATPortMap   bool // UPnP / NAT-PMP port mapping
	HolePunching bool // DCUtR
}

// ConnMgr configures the libp2p connection manager.
type ConnMgr struct {
	LowWater    int
	HighWater   int
	GracePeriod Duration
}

// Gossip configures the /cas/peers/1.0 peer exchange: each round, about
// every Interval, the node sends SampleSize signed peer records to Fanout
// of its connected peers. A zero value (or a key absent from the file)
// means its default.
type Gossip struct {
	Interval   Duration // mean period between rounds, jittered by ±20%; at least 1s
	SampleSize int      // peer records per message, 1..64 (the node's own record is one)
	Fanout     int      // connected peers exchanged with per round, 1..16
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("30s", "10m", "1h30m").
type Duration struct{ time.Duration }

// MarshalJSON writes d as a string such as "10m" (not "10m0s").
func (d Duration) MarshalJSON() ([]byte, error) {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return json.Marshal(s)
}

// UnmarshalJSON reads a duration string accepted by time.ParseDuration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("not a duration string: %s", truncate(string(b)))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// Default values shared by every profile.
const (
	DefaultReplicationFactor = 3
	DefaultChunkSize         = 1 << 20
	DefaultStorageQuota      = 10 << 30
	DefaultMaxPinsPerOwner   = 10_000
	DefaultCollectInterval   = 30 * time.Second
	DefaultConnMgrLowWater   = 32
	DefaultConnMgrHighWater  = 96
	DefaultConnMgrGrace      = 20 * time.Second
	DefaultCheckInterval     = time.Hour
	DefaultAuditInterval     = 24 * time.Hour
	DefaultLease             = 720 * time.Hour
	DefaultGossipInterval    = 30 * time.Second
	DefaultGossipSampleSize  = 16
	DefaultGossipFanout      = 3
)

// Bounds of the Gossip keys, checked by [Config.Validate], and the gossip
// period of the local profile.
const (
	MinGossipInterval   = time.Second
	MaxGossipSampleSize = 64
	MaxGossipFanout     = 16
	LocalGossipInterval = 2 * time.Second
)

// The repair loop's intervals of the local profile (a test network on one
// machine, where repair must show at once), and the bounds Validate puts
// on the loop's durations.
const (
	LocalCheckInterval = 3 * time.Second
	LocalAuditInterval = 10 * time.Second
	MinCheckInterval   = time.Second
	MinLease           = 10 * time.Second
)

// DefaultConfig returns a new config for profile ("" means "default"). Its
// Identity.PeerID is empty: [Init] fills it in. An unknown profile is an
// error that lists the valid ones.
func DefaultConfig(profile string) (*Config, error) {
	c := &Config{
		Addresses: Addresses{
			Swarm: []string{
				"/ip4/0.0.0.0/tcp/4001",
				"/ip6/::/tcp/4001",
				"/ip4/0.0.0.0/udp/4001/quic-v1",
				"/ip6/::/udp/4001/quic-v1",
				"/ip4/0.0.0.0/tcp/4002/ws",
			},
			Announce: []string{},
		},
		Bootstrap: []string{},
		Discovery: Discovery{MDNS: true},
		Replication: Replication{
			Factor:        DefaultReplicationFactor,
			CheckInterval: Duration{DefaultCheckInterval},
			AuditInterval: Duration{DefaultAuditInterval},
			Lease:         Duration{DefaultLease},
		},
		Chunker: Chunker{Size: DefaultChunkSize},
		Storage: Storage{
			Quota:           DefaultStorageQuota,
			MaxPinsPerOwner: DefaultMaxPinsPerOwner,
			CollectInterval: Duration{DefaultCollectInterval},
		},
		Swarm: Swarm{
			ConnMgr: ConnMgr{
				LowWater:    DefaultConnMgrLowWater,
				HighWater:   DefaultConnMgrHighWater,
				GracePeriod: Duration{DefaultConnMgrGrace},
			},
			RelayService: false,
			NATPortMap:   true,
			HolePunching: true,
		},
		Gossip: Gossip{
			Interval:   Duration{DefaultGossipInterval},
			SampleSize: DefaultGossipSampleSize,
			Fanout:     DefaultGossipFanout,
		},
	}
	switch profile {
	case "", ProfileDefault:
	case ProfileServer:
		c.Discovery.MDNS = false
		c.Swarm.NATPortMap = false
		c.Swarm.RelayService = true
	case ProfileLocal:
		c.Addresses.Swarm = []string{
			"/ip4/127.0.0.1/tcp/0",
			"/ip4/127.0.0.1/udp/0/quic-v1",
			"/ip4/127.0.0.1/tcp/0/ws",
		}
		c.Discovery.MDNS = false
		c.Swarm.NATPortMap = false
		c.Swarm.HolePunching = false
		c.Swarm.RelayService = false
		c.Replication.CheckInterval.Duration = LocalCheckInterval
		c.Replication.AuditInterval.Duration = LocalAuditInterval
		c.Gossip.Interval.Duration = LocalGossipInterval
	default:
		return nil, fmt.Errorf("config: unknown profile %q (valid: %s)", profile, strings.Join(Profiles, ", "))
	}
	return c, nil
}

// Parse decodes a config file strictly (unknown fields and trailing data are
// errors) and validates it. The retired keys Addresses.API and
// Replication.RepairInterval, which casd init once wrote but nothing reads
// any more, are dropped rather than refused, so that a repo made by an
// older casd still opens; the next [Repo.SaveConfig] leaves them out.
func Parse(data []byte) (*Config, error) {
	data, dropped := dropRetired(data)
	if len(dropped) > 0 {
		log.Debugw("ignoring retired config keys", "keys", dropped)
	}
	c := new(Config)
	if err := decodeStrict(data, c); err != nil {
		return nil, fmt.Errorf("config: decode: %w", err)
	}
	c.normalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// marshal encodes c as the indented JSON of the config file.
func (c *Config) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return append(b, '\n'), nil
}

// retiredKeys are the config keys that an older casd wrote (casd init put
// them in every config file) and that nothing reads any more. Each comes
// back, maybe under another name, with the feature that reads it.
var retiredKeys = [][]string{
	{"Addresses", "API"},              // a TCP API listener; the API is on api.sock only
	{"Replication", "RepairInterval"}, // a periodic repair loop
}

// dropRetired returns data without the [retiredKeys] and the dotted names
// of those it removed. Names match case-insensitively, as encoding/json
// matches fields. Data that has none of them, or whose first JSON value is
// not an object, is returned unchanged, and anything after the first value
// is kept, so that decodeStrict reports its errors as before.
func dropRetired(data []byte) ([]byte, []string) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&top); err != nil {
		return data, nil
	}
	var dropped []string
	for _, key := range retiredKeys {
		if dropPath(top, key) {
			dropped = append(dropped, strings.Join(key, "."))
		}
	}
	if len(dropped) == 0 {
		return data, nil
	}
	b, err := json.Marshal(top)
	if err != nil {
		return data, nil
	}
	return append(b, data[dec.InputOffset():]...), dropped
}

// dropPath deletes the member at path from obj, descending through
// objects, and reports whether it found one.
func dropPath(obj map[string]json.RawMessage, path []string) bool {
	found := false
	for name, raw := range obj {
		if !strings.EqualFold(name, path[0]) {
			continue
		}
		if len(path) == 1 {
			delete(obj, name)
			found = true
			continue
		}
		var sub map[string]json.RawMessage
		if err := json.Unmarshal(raw, &sub); err != nil || sub == nil {
			continue
		}
		if dropPath(sub, path[1:]) {
			b, err := json.Marshal(sub)
			if err != nil {
				continue
			}
			obj[name] = b
			found = true
		}
	}
	return found
}

// decodeStrict decodes exactly one JSON value from data into v, rejecting
// unknown object fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// normalize replaces nil lists by empty ones, so the file shows [] rather
// than null and a round trip through JSON is the identity.
func (c *Config) normalize() {
	for _, p := range []*[]string{&c.Addresses.Swarm, &c.Addresses.Announce, &c.Bootstrap} {
		if *p == nil {
			*p = []string{}
		}
	}
	// Keys added after the first config files were written: absent (or
	// 0) means the default.
	if c.Storage.MaxPinsPerOwner == 0 {
		c.Storage.MaxPinsPerOwner = DefaultMaxPinsPerOwner
	}
	if c.Storage.CollectInterval.Duration == 0 {
		c.Storage.CollectInterval.Duration = DefaultCollectInterval
	}
	r := &c.Replication
	for _, d := range []struct {
		v   *Duration
		def time.Duration
	}{{&r.CheckInterval, DefaultCheckInterval}, {&r.AuditInterval, DefaultAuditInterval}, {&r.Lease, DefaultLease}} {
		if d.v.Duration == 0 {
			d.v.Duration = d.def
		}
	}
	g := &c.Gossip
	if g.Interval.Duration == 0 {
		g.Interval.Duration = DefaultGossipInterval
	}
	if g.SampleSize == 0 {
		g.SampleSize = DefaultGossipSampleSize
	}
	if g.Fanout == 0 {
		g.Fanout = DefaultGossipFanout
	}
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	n := *c
	n.Addresses.Swarm = cloneList(c.Addresses.Swarm)
	n.Addresses.Announce = cloneList(c.Addresses.Announce)
	n.Bootstrap = cloneList(c.Bootstrap)
	return &n
}

func cloneList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// Validate checks every field: addresses parse as multiaddrs, bootstrap
// entries name a peer, numbers are in range. It returns the first problem
// as a one-line error naming the key, e.g.
// `config: Bootstrap[0]: "foo": invalid multiaddr: ...`.
func (c *Config) Validate() error {
	var self peer.ID
	if c.Identity.PeerID != "" {
		id, err := peer.Decode(c.Identity.PeerID)
		if err != nil {
			return fmt.Errorf("config: Identity.PeerID: %q: invalid peer ID: %w", c.Identity.PeerID, err)
		}
		self = id
	}
	for i, s := range c.Addresses.Swarm {
		if _, err := parseAddr(s); err != nil {
			return fmt.Errorf("config: Addresses.Swarm[%d]: %w", i, err)
		}
	}
	for i, s := range c.Addresses.Announce {
		if _, err := parseAddr(s); err != nil {
			return fmt.Errorf("config: Addresses.Announce[%d]: %w", i, err)
		}
	}
	for i, s := range c.Bootstrap {
		if _, err := parseBootstrapAddr(s, self); err != nil {
			return fmt.Errorf("config: Bootstrap[%d]: %w", i, err)
		}
	}
	if f := c.Replication.Factor; f < 0 || f > MaxReplicationFactor {
		return fmt.Errorf("config: Replication.Factor: %d out of range 0..%d", f, MaxReplicationFactor)
	}
	if err := c.Replication.validate(); err != nil {
		return err
	}
	if err := c.Gossip.validate(); err != nil {
		return err
	}
	if s := c.Chunker.Size; s < MinChunkSize || s > MaxChunkSize || s&(s-1) != 0 {
		return fmt.Errorf("config: Chunker.Size: %d must be a power of two between %d (256 KiB) and %d (4 MiB)", s, MinChunkSize, MaxChunkSize)
	}
	if q := c.Storage.Quota; q < 0 {
		return fmt.Errorf("config: Storage.Quota: %d must not be negative", q)
	}
	if n := c.Storage.MaxPinsPerOwner; n < 0 {
		return fmt.Errorf("config: Storage.MaxPinsPerOwner: %d must not be negative", n)
	}
	if d := c.Storage.CollectInterval.Duration; d < 0 {
		return fmt.Errorf("config: Storage.CollectInterval: %s must not be negative", d)
	}
	cm := c.Swarm.ConnMgr
	if cm.HighWater < 1 {
		return fmt.Errorf("config: Swarm.ConnMgr.HighWater: %d must be at least 1", cm.HighWater)
	}
	if cm.LowWater < 0 || cm.LowWater > cm.HighWater {
		return fmt.Errorf("config: Swarm.ConnMgr.LowWater: %d out of range 0..HighWater (%d)", cm.LowWater, cm.HighWater)
	}
	if cm.GracePeriod.Duration < 0 {
		return fmt.Errorf("config: Swarm.ConnMgr.GracePeriod: %s must not be negative", cm.GracePeriod)
	}
	return nil
}

// CanonicalBootstrapAddr checks s as [Config.Validate] checks an entry of
// Bootstrap and returns its canonical form (/p2p/ for /ipfs/, and so on):
// a multiaddr with an address to dial, then /p2p/<peer id>, of a peer
// other than self (a peer ID; "" for none). The error quotes s and says
// what is wrong with it, on one line.
func CanonicalBootstrapAddr(s, self string) (string, error) {
	var selfID peer.ID
	if self != "" {
		id, err := peer.Decode(self)
		if err != nil {
			return "", fmt.Errorf("%q: invalid own peer ID: %w", self, err)
		}
		selfID = id
	}
	m, err := parseBootstrapAddr(s, selfID)
	if err != nil {
		return "", err
	}
	return m.String(), nil
}

// parseBootstrapAddr is [CanonicalBootstrapAddr] for a decoded self, and
// returns the address parsed.
func parseBootstrapAddr(s string, self peer.ID) (ma.Multiaddr, error) {
	m, err := parseAddr(s)
	if err != nil {
		return nil, err
	}
	transport, id := peer.SplitAddr(m)
	switch {
	case id == "":
		return nil, fmt.Errorf("%q: must end in /p2p/<peer id>", truncate(s))
	case transport == nil:
		return nil, fmt.Errorf("%q: has no address to dial before /p2p/", truncate(s))
	case self != "" && id == self:
		return nil, fmt.Errorf("%q: is this node's own peer ID", truncate(s))
	}
	return m, nil
}

// validate checks the durations of the repair loop. Zero passes: it
// means the default (see normalize).
func (r *Replication) validate() error {
	if d := r.CheckInterval.Duration; d != 0 && d < MinCheckInterval {
		return fmt.Errorf("config: Replication.CheckInterval: %s must be at least %s", d, MinCheckInterval)
	}
	if d := r.AuditInterval.Duration; d < 0 {
		return fmt.Errorf("config: Replication.AuditInterval: %s must be positive", d)
	}
	if d := r.Lease.Duration; d != 0 && d < MinLease {
		return fmt.Errorf("config: Replication.Lease: %s must be at least %s", d, MinLease)
	}
	return nil
}

// validate checks the gossip keys. Zero passes: it means the default
// (see normalize).
func (g *Gossip) validate() error {
	if d := g.Interval.Duration; d != 0 && d < MinGossipInterval {
		return fmt.Errorf("config: Gossip.Interval: %s must be at least %s", d, MinGossipInterval)
	}
	if n := g.SampleSize; n < 0 || n > MaxGossipSampleSize {
		return fmt.Errorf("config: Gossip.SampleSize: %d out of range 1..%d", n, MaxGossipSampleSize)
	}
	if n := g.Fanout; n < 0 || n > MaxGossipFanout {
		return fmt.Errorf("config: Gossip.Fanout: %d out of range 1..%d", n, MaxGossipFanout)
	}
	return nil
}

// parseAddr parses s as a multiaddr; its error quotes s.
func parseAddr(s string) (ma.Multiaddr, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		// The parser's message echoes the input, which may hold newlines.
		return nil, fmt.Errorf("%q: invalid multiaddr: %s", truncate(s), escapeControl(err.Error()))
	}
	return m, nil
}

// escapeControl escapes control characters so that a message stays on one line.
func escapeControl(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
