package p2p

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitFor bounds every condition the tests wait for.
const waitFor = 30 * time.Second

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	return k
}

// newTestHost starts a host with opts; a missing identity is generated and
// no listen address means TCP on a free loopback port. The host is closed at
// cleanup.
func newTestHost(t testing.TB, opts HostOptions) host.Host {
	t.Helper()
	if opts.Identity == nil {
		opts.Identity = newKey(t)
	}
	if opts.ListenAddrs == nil {
		opts.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := NewHost(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return h
}

// newTestDHT starts a DHT on h, closed at cleanup (before h, which was
// registered earlier).
func newTestDHT(t testing.TB, h host.Host, bootstrap []peer.AddrInfo, opts ...DHTOption) *dht.IpfsDHT {
	t.Helper()
	d, err := NewDHT(t.Context(), h, bootstrap, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

func addrInfo(h host.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

func testCID(t testing.TB, data string) cid.Cid {
	t.Helper()
	sum := sha256.Sum256([]byte(data))
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, mh)
}

// TestDHTNetwork runs five loopback hosts, each DHT bootstrapped from host 0.
func TestDHTNetwork(t *testing.T) {
	const n = 5
	hosts := make([]host.Host, n)
	dhts := make([]*dht.IpfsDHT, n)
	for i := range n {
		hosts[i] = newTestHost(t, HostOptions{})
		var bootstrap []peer.AddrInfo
		if i > 0 {
			bootstrap = []peer.AddrInfo{addrInfo(hosts[0])}
		}
		dhts[i] = newTestDHT(t, hosts[i], bootstrap)
	}

	// Hosts 1..4 know only host 0 until a refresh asks it for more.
	require.Eventually(t, func() bool {
		return dhts[0].RoutingTable().Size() == n-1
	}, waitFor, 10*time.Millisecond, "host 0 routing table")
	for i, d := range dhts {
		require.NoError(t, <-d.ForceRefresh(), "refresh dht %d", i)
	}
	require.Eventually(t, func() bool {
		for _, d := range dhts {
			if d.RoutingTable().Size() != n-1 {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond, "full routing tables")

	t.Run("closest peers", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		defer cancel()
		got, err := dhts[4].GetClosestPeers(ctx, "casd closest peers key")
		require.NoError(t, err)
		want := make([]peer.ID, 0, n-1)
		for _, h := range hosts[:4] {
			want = append(want, h.ID())
		}
		require.ElementsMatch(t, want, got)
	})

	t.Run("provide and find", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		defer cancel()
		c := testCID(t, "casd provider record")
		require.NoError(t, dhts[1].Provide(ctx, c, true))
		var found []peer.ID
		for ai := range dhts[3].FindProvidersAsync(ctx, c, 1) {
			found = append(found, ai.ID)
		}
		require.NoError(t, ctx.Err())
		require.Equal(t, []peer.ID{hosts[1].ID()}, found)
	})

	t.Run("protocol id", func(t *testing.T) {
		const casKad, ipfsKad = protocol.ID("/cas/kad/1.0.0"), protocol.ID("/ipfs/kad/1.0.0")
		for i, h := range hosts {
			require.Contains(t, h.Mux().Protocols(), casKad, "host %d", i)
			require.NotContains(t, h.Mux().Protocols(), ipfsKad, "host %d", i)
		}
		// What peers learnt through identify.
		protos, err := hosts[0].Peerstore().GetProtocols(hosts[1].ID())
		require.NoError(t, err)
		require.Contains(t, protos, casKad)
		require.NotContains(t, protos, ipfsKad)
	})
}

func hasProtocol(a ma.Multiaddr, code int) bool {
	_, err := a.ValueForProtocol(code)
	return err == nil
}

// transportOf names the transport of a listen or connection address.
func transportOf(a ma.Multiaddr) string {
	switch {
	case hasProtocol(a, ma.P_QUIC_V1):
		return "quic-v1"
	case hasProtocol(a, ma.P_WS):
		return "ws"
	case hasProtocol(a, ma.P_TCP):
		return "tcp"
	}
	return ""
}

const echoProtocol = protocol.ID("/casd/test/echo/1.0")

// TestHostTransports listens on TCP, QUIC and WebSocket with every NAT
// option on, on loopback only, and dials each transport alone.
func TestHostTransports(t *testing.T) {
	server := newTestHost(t, HostOptions{
		ListenAddrs: []string{
			"/ip4/127.0.0.1/tcp/0",
			"/ip4/127.0.0.1/udp/0/quic-v1",
			"/ip4/127.0.0.1/tcp/0/ws",
		},
		// NATPortMap stays off in tests: its UPnP/NAT-PMP discovery would
		// send to the machine's own network.
		RelayService: true,
		HolePunching: true,
	})
	server.SetStreamHandler(echoProtocol, func(s network.Stream) {
		if _, err := io.Copy(s, s); err != nil {
			_ = s.Reset()
			return
		}
		_ = s.Close()
	})
	byTransport := make(map[string]ma.Multiaddr)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, a := range server.Addrs() {
			byTransport[transportOf(a)] = a
		}
		assert.Len(c, byTransport, 3, "addresses %v", server.Addrs())
	}, waitFor, 10*time.Millisecond)

	for _, tr := range []string{"tcp", "quic-v1", "ws"} {
		t.Run(tr, func(t *testing.T) {
			client := newTestHost(t, HostOptions{ListenAddrs: []string{}})
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			ai := peer.AddrInfo{ID: server.ID(), Addrs: []ma.Multiaddr{byTransport[tr]}}
			require.NoError(t, client.Connect(ctx, ai))
			conns := client.Network().ConnsToPeer(server.ID())
			require.Len(t, conns, 1)
			require.Equal(t, tr, transportOf(conns[0].RemoteMultiaddr()))
			// An echo proves security and muxer were negotiated.
			s, err := client.NewStream(ctx, server.ID(), echoProtocol)
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Write([]byte("casd " + tr))
			require.NoError(t, err)
			require.NoError(t, s.CloseWrite())
			got, err := io.ReadAll(s)
			require.NoError(t, err)
			require.Equal(t, "casd "+tr, string(got))
		})
	}
}

func TestHostAnnounceAddrs(t *testing.T) {
	const announce = "/ip4/198.51.100.7/tcp/4001"
	h := newTestHost(t, HostOptions{AnnounceAddrs: []string{announce}})
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(h.Addrs(), func(a ma.Multiaddr) bool { return a.String() == announce })
	}, waitFor, 10*time.Millisecond)
	for _, a := range h.Addrs() {
		require.Equal(t, announce, a.String())
	}
}

func TestNewHostErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", busy.Addr().(*net.TCPAddr).Port)

	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	require.NoError(t, err)

	tests := []struct {
		name    string
		opts    HostOptions
		wantErr string
	}{
		{"no identity", HostOptions{}, "no identity"},
		{"not ed25519", HostOptions{Identity: secp}, "not Ed25519"},
		{"bad listen addr", HostOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp"}}, "parse listen addresses"},
		{"bad announce addr", HostOptions{AnnounceAddrs: []string{"nonsense"}}, "parse announce addresses"},
		{"watermarks", HostOptions{ConnLow: 50, ConnHigh: 10}, "ConnLow exceeds ConnHigh"},
		{"port in use", HostOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", busyAddr}}, "listen on " + busyAddr},
		{"no transport", HostOptions{ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/webrtc-direct"}}, "listen on /ip4/127.0.0.1/udp/0/webrtc-direct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Identity == nil && tt.name != "no identity" {
				tt.opts.Identity = newKey(t)
			}
			h, err := NewHost(tt.opts)
			require.ErrorContains(t, err, tt.wantErr)
			require.Nil(t, h)
		})
	}
}

// libp2pGoroutines lists the goroutines that go-libp2p or quic-go started,
// by the function that started them.
func libp2pGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		_, creator, ok := strings.Cut(g, "\ncreated by ")
		if ok && (strings.HasPrefix(creator, "github.com/libp2p/") || strings.HasPrefix(creator, "github.com/quic-go/")) {
			found = append(found, strings.SplitN(creator, "\n", 2)[0])
		}
	}
	return found
}

// TestNewHostFailureLeaksNothing checks that a host failing to listen tears
// down everything newHost started: once the hosts of earlier tests have wound
// down, no goroutine of libp2p is left.
func TestNewHostFailureLeaksNothing(t *testing.T) {
	_, err := NewHost(HostOptions{Identity: newKey(t), ListenAddrs: []string{
		"/ip4/127.0.0.1/tcp/0",
		"/ip4/127.0.0.1/udp/0/quic-v1",
		"/ip4/127.0.0.1/tcp/0/ws",
		"/ip4/127.0.0.1/udp/0/webrtc-direct", // no such transport: fails
	}, RelayService: true, HolePunching: true}) // no NATPortMap: it would send to the machine's network
	require.ErrorContains(t, err, "webrtc-direct")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Empty(c, libp2pGoroutines(), "goroutines left")
	}, waitFor, 10*time.Millisecond)
}

// TestResourceLimits checks that a stream of a protocol in ProtocolLimits may
// hold a full window of maximal messages, and one of another protocol may not.
func TestResourceLimits(t *testing.T) {
	const listed, unlisted = protocol.ID("/cas/get/1.0"), protocol.ID("/cas/unlisted/1.0")
	server := newTestHost(t, HostOptions{ProtocolLimits: []protocol.ID{"/cas/store/1.0", listed, "/cas/peers/1.0"}})
	client := newTestHost(t, HostOptions{})
	require.NoError(t, client.Connect(t.Context(), addrInfo(server)))

	err := server.Network().ResourceManager().ViewProtocol(listed, func(s network.ProtocolScope) error {
		l := s.(rcmgr.ResourceScopeLimiter).Limit()
		require.GreaterOrEqual(t, l.GetStreamLimit(network.DirInbound), protocolLimit.StreamsInbound)
		require.GreaterOrEqual(t, l.GetMemoryLimit(), int64(2*windowMemory))
		return nil
	})
	require.NoError(t, err)

	tests := []struct {
		proto   protocol.ID
		wantErr bool
	}{
		{listed, false},
		{unlisted, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.proto), func(t *testing.T) {
			reserved := make(chan error, 1)
			server.SetStreamHandler(tt.proto, func(s network.Stream) {
				err := s.Scope().ReserveMemory(windowMemory, network.ReservationPriorityAlways)
				if err == nil {
					s.Scope().ReleaseMemory(windowMemory)
				}
				reserved <- err
				_ = s.Close()
			})
			defer server.RemoveStreamHandler(tt.proto)

			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			s, err := client.NewStream(ctx, server.ID(), tt.proto)
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Write([]byte{1}) // the handler runs once negotiation completes
			require.NoError(t, err)
			select {
			case err := <-reserved:
				if tt.wantErr {
					require.Error(t, err)
				} else {
					require.NoError(t, err)
				}
			case <-ctx.Done():
				t.Fatal("stream handler did not run")
			}
		})
	}
}

func TestConnectBootstrap(t *testing.T) {
	h := newTestHost(t, HostOptions{})
	good := newTestHost(t, HostOptions{})
	// A peer on a port nobody listens on: the dial is refused at once.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", closed.Addr().(*net.TCPAddr).Port))
	require.NoError(t, closed.Close())
	dead := func() peer.AddrInfo {
		id, err := peer.IDFromPrivateKey(newKey(t))
		require.NoError(t, err)
		return peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{deadAddr}}
	}
	dead1, dead2 := dead(), dead()

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		peers   []peer.AddrInfo
		wantErr []string
	}{
		{"none", t.Context(), nil, nil},
		{"only self", t.Context(), []peer.AddrInfo{addrInfo(h)}, nil},
		{"one of two", t.Context(), []peer.AddrInfo{dead1, addrInfo(good)}, nil},
		{"all dead", t.Context(), []peer.AddrInfo{dead1, dead2}, []string{dead1.ID.String(), dead2.ID.String()}},
		{"cancelled", cancelled, []peer.AddrInfo{dead1}, []string{dead1.ID.String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := connectBootstrap(tt.ctx, h, tt.peers)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, s := range tt.wantErr {
				require.ErrorContains(t, err, "connect bootstrap peer "+s)
			}
		})
	}
	require.Equal(t, network.Connected, h.Network().Connectedness(good.ID()))
}

func TestNewDHTCancelled(t *testing.T) {
	h := newTestHost(t, HostOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	id, err := peer.IDFromPrivateKey(newKey(t))
	require.NoError(t, err)
	d, err := NewDHT(ctx, h, []peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}})
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, d)
	require.NotContains(t, h.Mux().Protocols(), protocol.ID("/cas/kad/1.0.0"), "closed DHT still serves")
}

// TestMDNSHandlePeerFound drives the notifee directly, as mdns would: it
// connects to the peers found and reports each of them, connected or not,
// but neither itself nor anything after Close.
func TestMDNSHandlePeerFound(t *testing.T) {
	a := newTestHost(t, HostOptions{})
	b := newTestHost(t, HostOptions{})
	var found peerLog
	d := newMDNSDiscovery(a, found.add)
	d.HandlePeerFound(addrInfo(a)) // self: ignored
	d.HandlePeerFound(addrInfo(b))
	d.HandlePeerFound(addrInfo(b)) // duplicate while pending or connected
	require.Eventually(t, func() bool {
		return a.Network().Connectedness(b.ID()) == network.Connected
	}, waitFor, 10*time.Millisecond)
	d.HandlePeerFound(addrInfo(b)) // connected: reported, not dialled
	require.Equal(t, []peer.ID{b.ID(), b.ID(), b.ID()}, found.all())
	require.NoError(t, d.Close())
	require.NoError(t, d.Close())

	// mdns may still report peers after Close; that must neither block nor
	// start anything.
	c := newTestHost(t, HostOptions{})
	d.HandlePeerFound(addrInfo(c))
	require.NotEqual(t, network.Connected, a.Network().Connectedness(c.ID()))
	require.Len(t, found.all(), 3, "a peer reported after Close")
}

func TestStartMDNSNoAddrs(t *testing.T) {
	h := newTestHost(t, HostOptions{ListenAddrs: []string{}})
	c, err := StartMDNS(h, "", nil)
	require.ErrorContains(t, err, "start mdns")
	require.Nil(t, c)
}
