package dag_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/dag/dagtest"
)

// discard is a BlockPutter that keeps nothing: Add's CPU cost alone.
type discard struct{}

func (discard) PutMany(context.Context, []blockstore.Block) error { return nil }

var benchSizes = []struct {
	name string
	size int
}{
	{"1MiB", 1 << 20},
	{"16MiB", 16 << 20},
	{"128MiB", 128 << 20},
}

// BenchmarkAdd measures the transform alone: chunking, convergent keys,
// sealing and CIDs over every core, blocks thrown away.
func BenchmarkAdd(b *testing.B) {
	s := testSecrets(1)
	for _, sz := range benchSizes {
		data := randomBytes(sz.size, 1)
		b.Run(sz.name, func(b *testing.B) {
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dag.Add(b.Context(), bytes.NewReader(data), dag.Meta{Name: "x"}, s, discard{}, dag.AddOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAddToBlockstore adds into a real block store on disk, durable
// writes included; each iteration uses a fresh store so that nothing is
// deduplicated.
func BenchmarkAddToBlockstore(b *testing.B) {
	s := testSecrets(1)
	data := randomBytes(128<<20, 2)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		st, err := blockstore.Open(filepath.Join(dir, "blocks"), filepath.Join(dir, "meta.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := dag.Add(b.Context(), bytes.NewReader(data), dag.Meta{Name: "x"}, s, st, dag.AddOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkRead measures opening and decrypting a file from memory.
func BenchmarkRead(b *testing.B) {
	s := testSecrets(1)
	for _, sz := range benchSizes {
		st := dagtest.NewMemStore()
		a, err := dag.Add(context.Background(), bytes.NewReader(randomBytes(sz.size, 3)), dag.Meta{Name: "x"}, s, st, dag.AddOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(sz.name, func(b *testing.B) {
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			for b.Loop() {
				f, err := dag.OpenFile(b.Context(), st, a.Root, a.Key)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.WriteTo(b.Context(), io.Discard, st, dag.ReadOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
