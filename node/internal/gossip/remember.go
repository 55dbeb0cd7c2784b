package gossip

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/casd/casd/internal/fsutil"
	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

// RememberMax bounds the peers in the remembered file.
const RememberMax = 64

// maxRememberedInbound bounds the remembered peers that only ever
// connected to this node: anyone can open connections, under as many
// fresh peer IDs as it likes, and without the bound a burst of them
// would push every peer the node dialled out of the list, so that a
// restart whose bootstrap peers are gone would lead only to the
// attacker's peers (an eclipse). Peers the node dialled, whose addresses
// it chose, keep the other slots.
const maxRememberedInbound = RememberMax / 4

// peersFileVersion is the version of the remembered file's format.
const peersFileVersion = 1

// maxPeersFileSize bounds the remembered file read at New: RememberMax
// entries of a record and its addresses as text, with room to spare.
const maxPeersFileSize = RememberMax * 4 * protocol.MaxRecordSize

// peersFile is the remembered file: peers.json in the repo.
type peersFile struct {
	Version int         `json:"version"`
	Peers   []peerEntry `json:"peers"` // most recently connected first
}

// peerEntry is one remembered peer.
type peerEntry struct {
	ID            string    `json:"id"`
	Record        string    `json:"record"` // base64 (std) of the marshalled envelope; "" if none
	Addrs         []string  `json:"addrs"`
	LastConnected time.Time `json:"last_connected"`
	Outbound      bool      `json:"outbound,omitempty"` // this node dialled it at least once
}

// remembered is one peer in memory: what was last known of it.
type remembered struct {
	id     peer.ID
	last   time.Time
	record []byte // marshalled envelope, nil if none known
	addrs  []ma.Multiaddr
	// outbound: this node dialled the peer at least once (else the peer
	// only ever connected to it).
	outbound bool
}

// memory is the list of remembered peers, most recently connected first,
// at most RememberMax. It is safe for concurrent use.
type memory struct {
	mu    sync.Mutex // guards list and dirty
	list  []*remembered
	dirty bool // changed since the last save
}

func newMemory() *memory { return &memory{} }

// connected moves p to the front with time now, noting whether this node
// dialled it (called by the host's notifee on each connection: it must
// not block). Over maxRememberedInbound peers that were never dialled,
// the oldest of them goes; over RememberMax, the oldest peer.
func (m *memory) connected(p peer.ID, now time.Time, outbound bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := &remembered{id: p}
	if i := slices.IndexFunc(m.list, func(r *remembered) bool { return r.id == p }); i >= 0 {
		e = m.list[i]
		m.list = slices.Delete(m.list, i, i+1)
	}
	e.last = now
	e.outbound = e.outbound || outbound
	m.list = slices.Insert(m.list, 0, e)
	m.trim()
	m.dirty = true
}

// trim drops the oldest inbound-only peers while there are more than
// maxRememberedInbound of them, then the oldest peers while the list is
// over RememberMax.
func (m *memory) trim() {
	inbound := 0
	for _, e := range m.list {
		if !e.outbound {
			inbound++
		}
	}
	for i := len(m.list) - 1; i >= 0 && inbound > maxRememberedInbound; i-- {
		if !m.list[i].outbound {
			m.list = slices.Delete(m.list, i, i+1)
			inbound--
		}
	}
	if len(m.list) > RememberMax {
		m.list = m.list[:RememberMax]
	}
}

// add appends a loaded entry (the file is most recent first) unless p is
// already there or the list is full.
func (m *memory) add(e *remembered) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.list) >= RememberMax || slices.ContainsFunc(m.list, func(r *remembered) bool { return r.id == e.id }) {
		return false
	}
	m.list = append(m.list, e)
	return true
}

// ids returns the remembered peers, most recent first.
func (m *memory) ids() []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peer.ID, len(m.list))
	for i, e := range m.list {
		out[i] = e.id
	}
	return out
}

// addrInfos returns the remembered peers with the addresses last known of
// them, most recent first.
func (m *memory) addrInfos() []peer.AddrInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peer.AddrInfo, len(m.list))
	for i, e := range m.list {
		out[i] = peer.AddrInfo{ID: e.id, Addrs: slices.Clone(e.addrs)}
	}
	return out
}

// changed reports whether the list changed since the last save.
func (m *memory) changed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dirty
}

// save refreshes each remembered peer's record and addresses from the
// peerstore and writes the list to RememberPath atomically (mode 0600).
// Only the loop and Close call it, never at once.
func (g *Gossip) save() error {
	if g.cfg.RememberPath == "" {
		return nil
	}
	g.mem.mu.Lock()
	f := peersFile{Version: peersFileVersion, Peers: make([]peerEntry, 0, len(g.mem.list))}
	for _, e := range g.mem.list {
		g.refresh(e)
		if e.record == nil && len(e.addrs) == 0 {
			continue // nothing to dial it by
		}
		f.Peers = append(f.Peers, e.entry())
	}
	g.mem.dirty = false
	g.mem.mu.Unlock()

	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode remembered peers: %w", err)
	}
	if err := fsutil.WriteFile(g.cfg.RememberPath, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save remembered peers: %w", err)
	}
	return nil
}

// refresh takes e's current certified record and addresses from the
// peerstore, keeping what was known when it has none.
func (g *Gossip) refresh(e *remembered) {
	if env := g.cab.GetPeerRecord(e.id); env != nil {
		if raw, err := env.Marshal(); err == nil {
			e.record = raw
		} else {
			log.Debugw("marshal peer record", "peer", e.id, "err", err)
		}
	}
	if addrs := g.h.Peerstore().Addrs(e.id); len(addrs) > 0 {
		e.addrs = addrs[:min(len(addrs), protocol.MaxRecordAddrs)]
	}
}

// entry is e as the file holds it.
func (e *remembered) entry() peerEntry {
	out := peerEntry{ID: e.id.String(), Addrs: make([]string, 0, len(e.addrs)), LastConnected: e.last.UTC(), Outbound: e.outbound}
	if e.record != nil {
		out.Record = base64.StdEncoding.EncodeToString(e.record)
	}
	for _, a := range e.addrs {
		out.Addrs = append(out.Addrs, a.String())
	}
	return out
}

// load reads RememberPath into memory and the peerstore. Nothing in it is
// fatal: a missing file is an empty list, a corrupt one or a bad entry is
// logged and skipped.
func (g *Gossip) load() {
	if g.cfg.RememberPath == "" {
		return
	}
	f, err := readPeersFile(g.cfg.RememberPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warnw("remembered peers unreadable, starting without them", "path", g.cfg.RememberPath, "err", err)
		}
		return
	}
	seen := make(map[string]struct{}, min(len(f.Peers), RememberMax))
	for i, pe := range f.Peers {
		if len(seen) == RememberMax {
			log.Warnw("remembered peers beyond the bound skipped", "path", g.cfg.RememberPath, "skipped", len(f.Peers)-i)
			break
		}
		if _, dup := seen[pe.ID]; dup {
			log.Warnw("skip remembered peer listed twice", "path", g.cfg.RememberPath, "entry", i, "peer", pe.ID)
			continue
		}
		e, err := g.loadEntry(pe)
		if err != nil {
			log.Warnw("skip remembered peer", "path", g.cfg.RememberPath, "entry", i, "err", err)
			continue
		}
		seen[pe.ID] = struct{}{}
		if g.mem.add(e) && g.cfg.Sources != nil {
			g.cfg.Sources.Note(e.id, peers.SourceRemembered)
		}
	}
}

// readPeersFile reads and decodes the remembered file at path.
func readPeersFile(path string) (*peersFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open remembered peers: %w", err)
	}
	defer func() {
		if err := fh.Close(); err != nil {
			log.Debugw("close remembered peers", "path", path, "err", err)
		}
	}()
	var f peersFile
	dec := json.NewDecoder(io.LimitReader(fh, maxPeersFileSize))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode remembered peers: %w", err)
	}
	if f.Version != peersFileVersion {
		return nil, fmt.Errorf("remembered peers: version %d, want %d", f.Version, peersFileVersion)
	}
	return &f, nil
}

// loadEntry checks pe and puts what it holds in the peerstore: its record,
// verified, into the certified address book; without a valid record, its
// addresses. An entry with neither is an error.
func (g *Gossip) loadEntry(pe peerEntry) (*remembered, error) {
	id, err := peer.Decode(pe.ID)
	if err != nil {
		return nil, fmt.Errorf("peer id %q: %w", pe.ID, err)
	}
	if id == g.h.ID() {
		return nil, errors.New("names this node")
	}
	e := &remembered{id: id, last: pe.LastConnected, outbound: pe.Outbound}
	if pe.Record != "" {
		raw, rec, err := g.loadRecord(id, pe.Record)
		if err != nil {
			log.Warnw("remembered peer's record refused, using its addresses", "peer", id, "err", err)
		} else {
			e.record, e.addrs = raw, rec.Addrs
		}
	}
	if addrs := parseAddrs(id, pe.Addrs); len(addrs) > 0 {
		e.addrs = addrs
	}
	if e.record == nil {
		if len(e.addrs) == 0 {
			return nil, fmt.Errorf("peer %s: no valid record or address", id)
		}
		g.h.Peerstore().AddAddrs(id, e.addrs, GossipAddrTTL)
	}
	return e, nil
}

// loadRecord decodes and verifies a remembered record of id and consumes
// it into the certified address book; it returns the marshalled envelope
// and the record.
func (g *Gossip) loadRecord(id peer.ID, b64 string) ([]byte, *peer.PeerRecord, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, nil, fmt.Errorf("record: %w", err)
	}
	recs, err := protocol.DecodePeerRecords([][]byte{raw}, g.h.ID())
	if err != nil {
		return nil, nil, fmt.Errorf("record: %w", err)
	}
	if len(recs) != 1 || recs[0].Record.PeerID != id {
		return nil, nil, fmt.Errorf("record is not %s's", id)
	}
	if len(recs[0].Record.Addrs) == 0 {
		return nil, nil, errors.New("record names no address")
	}
	if _, err := g.cab.ConsumePeerRecord(recs[0].Envelope, GossipAddrTTL); err != nil {
		return nil, nil, fmt.Errorf("record: %w", err)
	}
	return raw, recs[0].Record, nil
}

// parseAddrs parses up to protocol.MaxRecordAddrs addresses; bad ones are
// logged and skipped.
func parseAddrs(id peer.ID, ss []string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, min(len(ss), protocol.MaxRecordAddrs))
	for _, s := range ss {
		if len(out) == protocol.MaxRecordAddrs {
			break
		}
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			log.Warnw("skip remembered address", "peer", id, "addr", s, "err", err)
			continue
		}
		out = append(out, a)
	}
	return out
}
