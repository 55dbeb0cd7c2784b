package api_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/casd/casd/api"
	"github.com/casd/casd/core"
)

var benchSizes = []int{64 << 10, 1 << 20, 16 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// BenchmarkCat measures a file's trip from the backend through the socket.
func BenchmarkCat(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			f := newStore()
			info := f.put(randomBytes(7, size), core.FileInfo{Name: "bench"})
			e := serve(b, api.Backends{Files: f})
			open := func(core.FileInfo) (io.Writer, error) { return io.Discard, nil }
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := e.c.Cat(b.Context(), info.Cid, open); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAdd measures a file's trip from the client to the backend,
// progress lines included.
func BenchmarkAdd(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			f := newStore()
			f.discard = true
			e := serve(b, api.Backends{Files: f})
			data := randomBytes(8, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.c.Add(b.Context(), bytes.NewReader(data), core.AddOptions{Progress: func(int64) {}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCall measures a small JSON round trip.
func BenchmarkCall(b *testing.B) {
	e := serve(b, api.Backends{Network: &fakeNetwork{}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.c.ID(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
