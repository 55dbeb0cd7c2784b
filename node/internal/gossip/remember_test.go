package gossip

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

// readFile decodes the remembered file at path.
func readFile(t *testing.T, path string) peersFile {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var f peersFile
	require.NoError(t, json.Unmarshal(data, &f))
	return f
}

func writeFile(t *testing.T, path string, f any) {
	t.Helper()
	data, err := json.Marshal(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// exchange runs one exchange from a to b by hand, as a round would.
func exchange(t *testing.T, a *node, b host.Host) {
	t.Helper()
	recs, err := protocol.ExchangePeers(exchangeCtx(t), a.h, b.ID(), a.g.Sample(b.ID()))
	require.NoError(t, err)
	a.g.Merge(b.ID(), recs)
}

// TestRememberRoundTrip: the peers a node connected to are saved at Close,
// most recent first, each with its verified record and its addresses, in a
// 0600 file written with nothing left beside it; a Gossip built on another
// host loads them back into its peerstore and notes them as remembered.
// (Prepending in the notifee reversed, or a load that skips the record,
// fails it.)
func TestRememberRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "peers.json")
	a := startNode(t, Config{Interval: time.Hour, RememberPath: path})
	var others []peer.ID
	for range 3 {
		b := startNode(t, Config{Interval: time.Hour})
		connect(t, a.h, b.h)
		exchange(t, a, b.h)
		others = append([]peer.ID{b.h.ID()}, others...)
	}
	require.NoError(t, a.g.Close())

	f := readFile(t, path)
	require.Equal(t, peersFileVersion, f.Version)
	require.Len(t, f.Peers, len(others))
	for i, e := range f.Peers {
		require.Equal(t, others[i].String(), e.ID, "entry %d out of order", i)
		raw, err := base64.StdEncoding.DecodeString(e.Record)
		require.NoError(t, err)
		recs, err := protocol.DecodePeerRecords([][]byte{raw}, a.h.ID())
		require.NoError(t, err)
		require.Equal(t, others[i], recs[0].Record.PeerID)
		require.NotEmpty(t, e.Addrs)
		require.True(t, e.Outbound, "entry %d: a dialled the peer", i)
		if i > 0 {
			require.False(t, e.LastConnected.After(f.Peers[i-1].LastConnected), "entry %d newer than the one before", i)
		}
	}
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "a temporary file was left beside peers.json")

	src := peers.NewSources(0, nil)
	g, err := New(Config{Host: newHost(t), RememberPath: path, Sources: src})
	require.NoError(t, err)
	require.Equal(t, others, g.mem.ids())
	for _, e := range g.mem.list {
		require.True(t, e.outbound, "%s loaded as inbound-only", e.id)
	}
	for _, p := range others {
		require.NotNil(t, g.cab.GetPeerRecord(p), "record of %s not loaded", p)
		info, ok := src.Get(p)
		require.True(t, ok)
		require.Equal(t, peers.SourceRemembered, info.Sources)
	}
	require.NoError(t, g.Close())
}

// testIDs returns n peer IDs of fresh keys.
func testIDs(t *testing.T, n int) []peer.ID {
	t.Helper()
	out := make([]peer.ID, n)
	for i := range out {
		id, err := peer.IDFromPrivateKey(newKey(t))
		require.NoError(t, err)
		out[i] = id
	}
	return out
}

// TestMemoryCapAndOrder: the list keeps the RememberMax most recently
// connected peers, most recent first; a reconnection moves a peer to the
// front. (A cap off by one, or appending instead of prepending, fails it.)
func TestMemoryCapAndOrder(t *testing.T) {
	ps := testIDs(t, RememberMax+10)
	m := newMemory()
	now := time.Now()
	for i, p := range ps {
		m.connected(p, now.Add(time.Duration(i)*time.Second), true)
	}
	got := m.ids()
	require.Len(t, got, RememberMax)
	for i := range got {
		require.Equal(t, ps[len(ps)-1-i], got[i])
	}
	again := ps[len(ps)-5]
	m.connected(again, now.Add(time.Hour), true)
	require.Equal(t, again, m.ids()[0])
	require.Len(t, m.ids(), RememberMax)
}

// TestMemoryInboundBounded: peers that only connected to the node, however
// many and however recent, hold at most maxRememberedInbound slots; the
// peers the node dialled keep the rest, and a dialled peer stays dialled
// when it later connects inbound. (Without the bound, a burst of fresh
// inbound peers pushes out every dialled one.)
func TestMemoryInboundBounded(t *testing.T) {
	dialled := testIDs(t, RememberMax)
	strangers := testIDs(t, 3*RememberMax)
	m := newMemory()
	now := time.Now()
	for i, p := range dialled {
		m.connected(p, now.Add(time.Duration(i)*time.Millisecond), true)
	}
	m.connected(dialled[0], now.Add(time.Second), false) // it now connects inbound
	for i, p := range strangers {
		m.connected(p, now.Add(time.Minute+time.Duration(i)*time.Millisecond), false)
	}
	got := m.ids()
	require.Len(t, got, RememberMax)
	inbound := 0
	for _, p := range got {
		if slices.Contains(strangers, p) {
			inbound++
		}
	}
	require.Equal(t, maxRememberedInbound, inbound)
	// The newest strangers, newest first, then the newest dialled peers.
	for i := range maxRememberedInbound {
		require.Equal(t, strangers[len(strangers)-1-i], got[i])
	}
	require.Equal(t, dialled[0], got[maxRememberedInbound], "a dialled peer that came back inbound is still dialled")
	require.Equal(t, dialled[len(dialled)-1], got[maxRememberedInbound+1])
}

// TestRememberLoadCap: a file of more than RememberMax entries loads the
// first RememberMax, in order.
func TestRememberLoadCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	f := peersFile{Version: peersFileVersion}
	var want []peer.ID
	for i := range RememberMax + 6 {
		key := newKey(t)
		raw, err := signedRecord(t, key, 1, loopbackAddr(i)).Marshal()
		require.NoError(t, err)
		id, err := peer.IDFromPrivateKey(key)
		require.NoError(t, err)
		want = append(want, id)
		f.Peers = append(f.Peers, peerEntry{ID: id.String(), Record: base64.StdEncoding.EncodeToString(raw), Addrs: []string{}})
	}
	writeFile(t, path, f)
	g, err := New(Config{Host: newHost(t), RememberPath: path})
	require.NoError(t, err)
	require.Equal(t, want[:RememberMax], g.mem.ids())
	require.NoError(t, g.Close())
}

// TestRememberCorruptTolerated: a corrupt file, or one of another
// version, loads as empty and is left alone by Close; in a readable file
// bad entries are skipped and the rest loaded: a bad record falls back to
// the entry's addresses, bad addresses are skipped, and an entry naming
// this node or with nothing to dial is dropped.
func TestRememberCorruptTolerated(t *testing.T) {
	h := newHost(t)
	for name, content := range map[string]string{
		"not json":      `{"version":1,"peers":[{"id":`,
		"other version": `{"version":2,"peers":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "peers.json")
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
			g, err := New(Config{Host: h, RememberPath: path})
			require.NoError(t, err)
			require.Empty(t, g.mem.ids())
			require.NoError(t, g.Close())
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, content, string(data), "Close rewrote a file it could not read")
		})
	}

	good, addrsOnly, badRec, forged := newKey(t), newKey(t), newKey(t), newKey(t)
	goodID, addrsID, badRecID, forgedID := idOf(t, good), idOf(t, addrsOnly), idOf(t, badRec), idOf(t, forged)
	goodRaw, err := signedRecord(t, good, 1, loopbackAddr(1)).Marshal()
	require.NoError(t, err)
	forgedRaw, err := sealRecord(t, good, forgedID, 1, loopbackAddr(2)).Marshal()
	require.NoError(t, err)
	b64 := base64.StdEncoding.EncodeToString
	path := filepath.Join(t.TempDir(), "peers.json")
	writeFile(t, path, peersFile{Version: peersFileVersion, Peers: []peerEntry{
		{ID: "not a peer id", Addrs: []string{loopbackAddr(0)}},
		{ID: h.ID().String(), Addrs: []string{loopbackAddr(0)}},
		{ID: forgedID.String(), Record: b64(forgedRaw)},
		{ID: badRecID.String(), Record: "%%%", Addrs: []string{loopbackAddr(3)}},
		{ID: goodID.String(), Record: b64(goodRaw)},
		{ID: addrsID.String(), Addrs: []string{"/not/an/addr", loopbackAddr(4)}},
		{ID: goodID.String(), Addrs: []string{loopbackAddr(5)}},
	}})
	src := peers.NewSources(0, nil)
	g, err := New(Config{Host: h, RememberPath: path, Sources: src})
	require.NoError(t, err)
	require.Equal(t, []peer.ID{badRecID, goodID, addrsID}, g.mem.ids())
	require.NotNil(t, g.cab.GetPeerRecord(goodID))
	require.Nil(t, g.cab.GetPeerRecord(badRecID))
	require.Equal(t, []string{loopbackAddr(3)}, addrStrings(h, badRecID))
	require.Equal(t, []string{loopbackAddr(4)}, addrStrings(h, addrsID))
	require.Empty(t, h.Peerstore().Addrs(forgedID))
	require.NotContains(t, addrStrings(h, goodID), loopbackAddr(5), "a second entry of a peer was loaded")
	_, known := src.Get(forgedID)
	require.False(t, known)
	require.NoError(t, g.Close())
}

func idOf(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	require.NoError(t, err)
	return id
}

func addrStrings(h host.Host, p peer.ID) []string {
	var out []string
	for _, a := range h.Peerstore().Addrs(p) {
		out = append(out, a.String())
	}
	return out
}

// rememberPeers writes a remembered file at path listing n plain hosts
// (which dial nobody), by running a Gossip connected to them, and returns
// the hosts.
func rememberPeers(t *testing.T, path string, n int) []host.Host {
	t.Helper()
	g, err := New(Config{Host: newHost(t), Interval: time.Hour, RememberPath: path})
	require.NoError(t, err)
	g.Start()
	var hs []host.Host
	for range n {
		h := newHost(t)
		connect(t, g.h, h)
		hs = append(hs, h)
	}
	require.NoError(t, g.Close())
	require.Len(t, readFile(t, path).Peers, n)
	return hs
}

func connectedToAll(h host.Host, hs []host.Host) bool {
	for _, o := range hs {
		if !connected(h, o.ID()) {
			return false
		}
	}
	return true
}

// TestDialRememberedAtStart: a node with no connection dials its
// remembered peers when it starts, without waiting for a round (Interval
// is an hour). (Not dialling them at Start fails it.)
func TestDialRememberedAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	hs := rememberPeers(t, path, 3)
	n := startNode(t, Config{Interval: time.Hour, RememberPath: path})
	eventually(t, func() bool { return connectedToAll(n.h, hs) }, "remembered peers not dialled at start")
	info, _ := n.src.Get(hs[0].ID())
	require.NotZero(t, info.Sources&peers.SourceRemembered)
}

// TestRoundRedialsRemembered: a node left with no connection dials its
// remembered peers again at its next round, at the addresses remembered
// even once the peerstore forgot them. (A round that does not dial, or
// dials by the peerstore's addresses only, fails it.)
func TestRoundRedialsRemembered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	hs := rememberPeers(t, path, 2)
	n := startNode(t, Config{Interval: 200 * time.Millisecond, RememberPath: path})
	eventually(t, func() bool { return connectedToAll(n.h, hs) }, "remembered peers not dialled")
	eventually(t, func() bool { return !n.g.remembering.Load() }, "the start dial did not end")
	for _, o := range hs {
		require.NoError(t, n.h.Network().ClosePeer(o.ID()))
		eventually(t, func() bool { return !connected(n.h, o.ID()) }, "%s still connected", o.ID())
		n.h.Peerstore().ClearAddrs(o.ID()) // as if they had expired: the remembered ones remain
		require.Empty(t, n.h.Peerstore().Addrs(o.ID()))
	}
	eventually(t, func() bool { return connectedToAll(n.h, hs) }, "remembered peers not dialled again")
}

// TestRoundSavesRemembered: a round saves the remembered peers once they
// changed, without waiting for Close. (A round that does not save, fails
// it.)
func TestRoundSavesRemembered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	n := startNode(t, Config{Interval: 200 * time.Millisecond, RememberPath: path})
	other := newHost(t)
	connect(t, n.h, other)
	eventually(t, func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		var f peersFile
		return json.Unmarshal(data, &f) == nil && len(f.Peers) == 1 && f.Peers[0].ID == other.ID().String()
	}, "the round did not save the remembered peers")
}

// FuzzLoadPeersFile: whatever the remembered file holds, New succeeds,
// loads at most RememberMax peers, none of them this node, and each with
// something to dial it by.
func FuzzLoadPeersFile(f *testing.F) {
	key := newKey(f)
	raw, err := signedRecord(f, key, 1, loopbackAddr(1)).Marshal()
	require.NoError(f, err)
	id := idOf(f, key)
	good, err := json.Marshal(peersFile{Version: 1, Peers: []peerEntry{
		{ID: id.String(), Record: base64.StdEncoding.EncodeToString(raw), Addrs: []string{loopbackAddr(2)}},
	}})
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"version":1,"peers":[{"id":"` + id.String() + `","record":"AAAA","addrs":["/ip4/1.2.3.4"]}]}`))
	bare := newKey(f) // a record naming no address, of a peer the host knows nothing of
	empty, err := signedRecord(f, bare, 2).Marshal()
	require.NoError(f, err)
	f.Add([]byte(`{"version":1,"peers":[{"id":"` + idOf(f, bare).String() + `","record":"` + base64.StdEncoding.EncodeToString(empty) + `"}]}`))
	f.Add([]byte(`{"version":1,"peers":null}`))
	f.Add([]byte(`[]`))
	h := newHost(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "peers.json")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		g, err := New(Config{Host: h, RememberPath: path})
		require.NoError(t, err)
		loaded := g.mem.ids()
		require.LessOrEqual(t, len(loaded), RememberMax)
		require.NotContains(t, loaded, h.ID())
		for _, p := range loaded {
			require.NotEmpty(t, h.Peerstore().Addrs(p), "%s loaded with no address", p)
		}
		require.NoError(t, g.Close())
	})
}

// TestStartRemembersOpenConnections: a connection opened before Start
// (a bootstrap peer's, dialled while the node's stack was built) is
// remembered like the later ones. (Start not seeding the list: caught.)
func TestStartRemembersOpenConnections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	h, early, late := newHost(t), newHost(t), newHost(t)
	connect(t, h, early)
	g, err := New(Config{Host: h, Interval: time.Hour, RememberPath: path})
	require.NoError(t, err)
	g.Start()
	connect(t, h, late)
	require.NoError(t, g.Close())
	f := readFile(t, path)
	require.Len(t, f.Peers, 2)
	require.Equal(t, late.ID().String(), f.Peers[0].ID)
	require.Equal(t, early.ID().String(), f.Peers[1].ID)
}
