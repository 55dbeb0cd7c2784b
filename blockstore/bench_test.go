package blockstore_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/blockstore/blockstoretest"
)

var benchSizes = []int{4 << 10, 256 << 10, 1 << 20, 4 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// nthCid returns a distinct CID for each n without hashing block data: Put
// trusts its caller's CID, so the benchmarks measure storage, not SHA-256.
func nthCid(n uint64) cid.Cid {
	h, err := multihash.Sum(binary.BigEndian.AppendUint64(nil, n), multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func BenchmarkPut(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			s := newStore(b)
			data := blockstoretest.RandomBlock(blockstoretest.NewRand(1), size).Data
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				n++
				if err := s.Put(b.Context(), blockstore.Block{Cid: nthCid(n), Data: data}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	const blocks = 16
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			s := newStore(b)
			rng := blockstoretest.NewRand(2)
			cids := make([]cid.Cid, blocks)
			for i := range cids {
				blk := blockstoretest.RandomBlock(rng, size)
				blockstoretest.MustPut(b, s, blk)
				cids[i] = blk.Cid
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Get(b.Context(), cids[i%blocks]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkPutMany(b *testing.B) {
	const size = 1 << 20
	for _, batch := range []int{8, 32} {
		b.Run(fmt.Sprintf("1MiBx%d", batch), func(b *testing.B) {
			s := newStore(b)
			data := blockstoretest.RandomBlock(blockstoretest.NewRand(3), size).Data
			bs := make([]blockstore.Block, batch)
			b.SetBytes(int64(size * batch))
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				for i := range bs {
					n++
					bs[i] = blockstore.Block{Cid: nthCid(n), Data: data}
				}
				if err := s.PutMany(b.Context(), bs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUsage measures the walk of repo stat and of the first offer
// after start: two trees of 64×64 small leaves, one owned and one held
// for others, 8,322 blocks in all, walked with WithLeaves (the leaves are
// sized, not read). It reports the cost per block reached.
func BenchmarkUsage(b *testing.B) {
	s := newStore(b)
	ctx := b.Context()
	rng := blockstoretest.NewRand(7)
	lowest := make(map[cid.Cid]bool)
	var reached int
	for _, reason := range []string{"owner", "replica:k"} {
		tree := blockstoretest.MakeTree(rng, 3, 64, 512)
		blockstoretest.MustPut(b, s, tree.Blocks...)
		if err := s.Pin(ctx, tree.Root, reason); err != nil {
			b.Fatal(err)
		}
		for _, blk := range tree.Blocks {
			if children, _ := blockstoretest.Links(blk.Cid, blk.Data); len(children) == 64 && !blk.Cid.Equals(tree.Root) {
				lowest[blk.Cid] = true
			}
		}
		reached += len(tree.Blocks)
	}
	leaves := blockstore.WithLeaves(func(c cid.Cid, _ []byte) bool { return lowest[c] })
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Usage(ctx, blockstoretest.Links, usageClass, 2, leaves); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(reached), "ns/block")
}
