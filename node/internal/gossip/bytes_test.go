package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/multiformats/go-varint"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// deployedAddrs are the addresses a default node publishes: TCP, QUIC and
// WebSocket on IPv4 and IPv6, public and LAN.
func deployedAddrs(i int) []string {
	var out []string
	for _, ip := range []string{
		fmt.Sprintf("/ip4/203.0.113.%d", i%250+1),
		fmt.Sprintf("/ip4/192.168.1.%d", i%250+1),
		fmt.Sprintf("/ip6/2001:db8::%x", i+1),
	} {
		out = append(out, ip+"/tcp/4001", ip+"/udp/4001/quic-v1", ip+"/tcp/4002/ws")
	}
	return out
}

// frameSize is the bytes of one PeerList frame carrying recs on the wire:
// the length prefix and the message.
func frameSize(t *testing.T, raw [][]byte) int {
	t.Helper()
	n := len(pb.Marshal(&pb.PeerList{Records: raw}))
	require.LessOrEqual(t, n, protocol.MaxRequestSize)
	return varint.UvarintSize(uint64(n)) + n
}

// TestBytesPerRound measures what gossip costs: a node at the default
// SampleSize, knowing more peers than it sends, samples 16 records; their
// marshalled sizes give the frame, and a round of Fanout exchanges as
// client (and, on average, as many as server) gives the bytes per round.
func TestBytesPerRound(t *testing.T) {
	n := startNode(t, Config{Interval: time.Hour})
	for i := range 40 {
		_, err := n.g.cab.ConsumePeerRecord(signedRecord(t, newKey(t), uint64(time.Now().UnixNano()), deployedAddrs(i)...), time.Hour)
		require.NoError(t, err)
	}
	to := newHost(t).ID()
	sample := n.g.Sample(to)
	require.Len(t, sample, DefaultSampleSize)
	raw := make([][]byte, len(sample))
	recBytes := 0
	for i, env := range sample {
		b, err := env.Marshal()
		require.NoError(t, err)
		raw[i] = b
		recBytes += len(b)
	}
	frame := frameSize(t, raw)
	// As client: Fanout lists sent, Fanout replies received; as server, on
	// average Fanout exchanges more (each node is picked Fanout times a
	// round), the same bytes the other way.
	perRound := 2 * 2 * DefaultFanout * frame
	t.Logf("record of a peer with %d addresses: %d bytes; own loopback record: %d bytes",
		len(deployedAddrs(0)), len(raw[1]), len(raw[0]))
	t.Logf("PeerList of %d records: %d bytes of records, %d bytes on the wire", len(raw), recBytes, frame)
	t.Logf("per node per round (Fanout %d, as client and server): %d bytes sent + %d received = %d; at Interval %s: %.0f B/s"+
		" (before Noise, yamux and stream negotiation)",
		DefaultFanout, perRound/2, perRound/2, perRound, DefaultInterval, float64(perRound)/DefaultInterval.Seconds())
}
