package protocol_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
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

// BenchmarkTreeProofs measures the owner's side of a tree audit over a 64
// MiB tree (64 chunks of 1 MiB) in memory: one walk, hashing every block
// once to verify it and once per prover. "challenge" is the whole audit
// of one holder over loopback: the holder's walk and proof (its backend's
// blocks trusted, as a GetBackend's are) plus the round trip.
func BenchmarkTreeProofs(b *testing.B) {
	tree := fileTree(b, 64, benchBlockSize, dag.DefaultFanout, "bench")
	size := int64(totalBytes(tree))
	own := dagtest.NewMemStore()
	if err := own.PutMany(context.Background(), tree); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("provers=%d", n), func(b *testing.B) {
			provers := make([]protocol.TreeProver, n)
			for i := range provers {
				provers[i] = protocol.TreeProver{Peer: peer.ID(fmt.Sprint("p", i)), Nonce: protocol.Nonce()}
			}
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := protocol.TreeProofs(context.Background(), own, tree[0].Cid, provers); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("challenge", func(b *testing.B) {
		client, server := hostPair(b)
		backend := &treeBackend{memBackend: newMemBackend()}
		backend.add(tree...)
		owner := newKey(b)
		if err := backend.Pin(context.Background(), tree[0].Cid, owner.Public().(ed25519.PublicKey), time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		svc := protocol.New(server, protocol.WithGetBackend(backend))
		svc.Start()
		b.Cleanup(func() { _ = svc.Close() })
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := protocol.TreeChallenge(context.Background(), client, server.ID(), owner, tree[0].Cid, protocol.Nonce()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
