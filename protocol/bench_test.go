package protocol_test

import (
	"context"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/protocol"
)

const (
	benchBlockSize = 1 << 20
	benchBatch     = 16 // blocks per iteration
)

// BenchmarkRawStream is the ceiling: one libp2p stream between two loopback
// TCP hosts, 1 MiB writes, io.Copy to io.Discard on the other side. One
// iteration moves benchBatch MiB, like one iteration of BenchmarkFetch.
func BenchmarkRawStream(b *testing.B) {
	client, server := hostPair(b)
	const id = "/cas/bench/raw"
	done := make(chan int64, 1)
	server.SetStreamHandler(id, func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		_ = s.Close()
		done <- n
	})
	s, err := client.NewStream(context.Background(), server.ID(), id)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchBlockSize)
	b.SetBytes(benchBatch * benchBlockSize)
	b.ReportAllocs()
	var sent int64
	for b.Loop() {
		for range benchBatch {
			n, err := s.Write(buf)
			if err != nil {
				b.Fatal(err)
			}
			sent += int64(n)
		}
	}
	if err := s.CloseWrite(); err != nil {
		b.Fatal(err)
	}
	if got := <-done; got != sent {
		b.Fatalf("server read %d bytes, client sent %d", got, sent)
	}
	_ = s.Close()
}

// BenchmarkFetch fetches benchBatch blocks of 1 MiB per iteration from a
// host serving an in-memory backend, with verification on arrival.
func BenchmarkFetch(b *testing.B) {
	client, server := hostPair(b)
	backend := newMemBackend()
	bs := makeBlocks(b, benchBatch, benchBlockSize, "bench")
	backend.add(bs...)
	startService(b, server, backend)
	want := make([]cid.Cid, len(bs))
	for i, blk := range bs {
		want[i] = blk.Cid
	}
	ctx := context.Background()
	var got int
	onBlock := func(blk blockstore.Block) error { got += len(blk.Data); return nil }

	b.Run("session", func(b *testing.B) {
		s, err := protocol.NewGetSession(ctx, client, server.ID())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetBytes(benchBatch * benchBlockSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Fetch(ctx, cid.Undef, want, onBlock); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream-per-fetch", func(b *testing.B) {
		b.SetBytes(benchBatch * benchBlockSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := protocol.Fetch(ctx, client, server.ID(), cid.Undef, want, onBlock); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStore pushes benchBatch blocks of 1 MiB per iteration into an
// in-memory backend (no fsync), with verification on arrival.
func BenchmarkStore(b *testing.B) {
	client, server := hostPair(b)
	backend := newMemBackend()
	startService(b, server, backend)
	// A receiver takes only blocks its root reaches: a root, then chunks.
	bs := fileTree(b, benchBatch-1, benchBlockSize, dag.DefaultFanout, "bench")
	owner := newKey(b)
	ctx := context.Background()
	b.SetBytes(benchBatch * benchBlockSize)
	b.ReportAllocs()
	for b.Loop() {
		res, err := protocol.Store(ctx, client, server.ID(), owner, bs[0].Cid, seqOf(bs),
			uint64(len(bs)), totalBytes(bs))
		if err != nil || res.Stored != benchBatch {
			b.Fatalf("store: %+v, %v", res, err)
		}
	}
}
