package protocol_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	p2pprotocol "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/protocol"
)

// served returns which of the casd protocols h handles.
func served(h host.Host) []p2pprotocol.ID {
	var out []p2pprotocol.ID
	for _, id := range []p2pprotocol.ID{protocol.GetID, protocol.StoreID} {
		if slices.Contains(h.Mux().Protocols(), id) {
			out = append(out, id)
		}
	}
	return out
}

// TestServiceProtocols checks that a service handles exactly the
// protocols it has a backend for, from Start until Close, and that its
// start-up log line says which.
func TestServiceProtocols(t *testing.T) {
	b := newMemBackend()
	cases := []struct {
		name string
		opts []protocol.Option
		want []p2pprotocol.ID
	}{
		{"get", []protocol.Option{protocol.WithGetBackend(b)}, []p2pprotocol.ID{protocol.GetID}},
		{"store", []protocol.Option{protocol.WithStoreBackend(b)}, []p2pprotocol.ID{protocol.StoreID}},
		{"both", []protocol.Option{protocol.WithGetBackend(b), protocol.WithStoreBackend(b)},
			[]p2pprotocol.ID{protocol.GetID, protocol.StoreID}},
		{"none", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			svc := protocol.New(h, tc.opts...)
			if got := served(h); len(got) != 0 {
				t.Fatalf("before Start: serving %v", got)
			}
			logs := captureLogs(t, "info")
			svc.Start()
			var started []map[string]any
			for _, l := range logs() {
				var e map[string]any
				if err := json.Unmarshal([]byte(l), &e); err == nil && e["msg"] == "protocol service started" {
					started = append(started, e)
				}
			}
			get, store := slices.Contains(tc.want, protocol.GetID), slices.Contains(tc.want, protocol.StoreID)
			if len(started) != 1 || started[0]["get"] != get || started[0]["store"] != store {
				t.Fatalf("start-up log %v, want one line with get %v, store %v", started, get, store)
			}
			if got := served(h); !slices.Equal(got, tc.want) {
				t.Fatalf("after Start: serving %v, want %v", got, tc.want)
			}
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if got := served(h); len(got) != 0 {
				t.Fatalf("after Close: serving %v", got)
			}
		})
	}
}

// TestIdleTimeoutNotPositive checks that WithIdleTimeout ignores a zero or
// negative timeout, which would fail every stream at once, and keeps the
// default.
func TestIdleTimeoutNotPositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			client, server := hostPair(t)
			backend := newMemBackend()
			b := makeBlock(t, []byte("served"))
			backend.add(b)
			startService(t, server, backend, protocol.WithIdleTimeout(d))
			n := 0
			_, err := protocol.Fetch(context.Background(), client, server.ID(), cid.Undef, []cid.Cid{b.Cid},
				func(blockstore.Block) error { n++; return nil })
			if err != nil || n != 1 {
				t.Fatalf("got %d blocks, err %v", n, err)
			}
		})
	}
}
