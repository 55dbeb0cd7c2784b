package bench_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	mib = 1 << 20
	// chunkSize is casd's default chunk size, the unit of all the limits.
	chunkSize = 1 * mib
	// syncEvery is how many bytes the fsync limit writes between fsyncs.
	syncEvery = 8 * mib
	// rotateAt bounds the fsync limit's file: it starts a new one past this
	// size, so a long run does not fill the disk.
	rotateAt = 256 * mib
)

// randomBytes returns n bytes of a fixed ChaCha8 stream.
func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	p := make([]byte, n)
	if _, err := rand.NewChaCha8([32]byte{'c', 'a', 's', 'd'}).Read(p); err != nil {
		tb.Fatalf("fill %d random bytes: %v", n, err)
	}
	return p
}

// newGCM returns AES-256-GCM under a fixed key.
func newGCM(tb testing.TB) cipher.AEAD {
	tb.Helper()
	block, err := aes.NewCipher(randomBytes(tb, 32))
	if err != nil {
		tb.Fatalf("aes.NewCipher: %v", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		tb.Fatalf("cipher.NewGCM: %v", err)
	}
	return aead
}

// BenchmarkLimitSHA256 is the ceiling of anything that hashes every byte once
// on one core: casd hashes each chunk's plaintext (its convergent key) and
// its ciphertext (its CID).
func BenchmarkLimitSHA256(b *testing.B) {
	buf := randomBytes(b, chunkSize)
	var sum [sha256.Size]byte
	b.SetBytes(chunkSize)
	b.ReportAllocs()
	for b.Loop() {
		sum = sha256.Sum256(buf)
	}
	if sum == ([sha256.Size]byte{}) {
		b.Fatal("SHA-256 of random bytes is zero")
	}
}

// BenchmarkLimitAESGCM is the ceiling of sealing on one core: one
// AES-256-GCM seal of a 1 MiB chunk per iteration, into a reused buffer.
func BenchmarkLimitAESGCM(b *testing.B) {
	aead := newGCM(b)
	pt := randomBytes(b, chunkSize)
	nonce := make([]byte, aead.NonceSize())
	ct := make([]byte, 0, chunkSize+aead.Overhead())
	b.SetBytes(chunkSize)
	b.ReportAllocs()
	for b.Loop() {
		ct = aead.Seal(ct[:0], nonce, pt, nil)
	}
	if len(ct) != chunkSize+aead.Overhead() {
		b.Fatalf("sealed %d bytes, want %d", len(ct), chunkSize+aead.Overhead())
	}
}

// BenchmarkLimitAddChunk is the CPU work add does per chunk, on one core and
// with the standard library only: hash the plaintext, derive its key with
// HMAC-SHA256, seal it with AES-256-GCM, hash the ciphertext.
func BenchmarkLimitAddChunk(b *testing.B) {
	secret := randomBytes(b, 32)
	pt := randomBytes(b, chunkSize)
	ct := make([]byte, 0, chunkSize+16)
	nonce := make([]byte, 12)
	var cidSum [sha256.Size]byte
	b.SetBytes(chunkSize)
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256(pt)
		mac := hmac.New(sha256.New, secret)
		mac.Write(sum[:])
		block, err := aes.NewCipher(mac.Sum(nil))
		if err != nil {
			b.Fatalf("aes.NewCipher: %v", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			b.Fatalf("cipher.NewGCM: %v", err)
		}
		ct = aead.Seal(ct[:0], nonce, pt, nil)
		cidSum = sha256.Sum256(ct)
	}
	if cidSum == ([sha256.Size]byte{}) {
		b.Fatal("SHA-256 of the ciphertext is zero")
	}
}

// BenchmarkLimitCatChunk is the CPU work cat does per chunk, on one core:
// hash the ciphertext to check it against its CID, then open it.
func BenchmarkLimitCatChunk(b *testing.B) {
	aead := newGCM(b)
	nonce := make([]byte, aead.NonceSize())
	ct := aead.Seal(nil, nonce, randomBytes(b, chunkSize), nil)
	want := sha256.Sum256(ct)
	pt := make([]byte, 0, chunkSize)
	b.SetBytes(chunkSize)
	b.ReportAllocs()
	for b.Loop() {
		if sha256.Sum256(ct) != want {
			b.Fatal("ciphertext hash changed")
		}
		var err error
		if pt, err = aead.Open(pt[:0], nonce, ct, nil); err != nil {
			b.Fatalf("open: %v", err)
		}
	}
	if len(pt) != chunkSize {
		b.Fatalf("opened %d bytes, want %d", len(pt), chunkSize)
	}
}

// BenchmarkLimitFsyncWrite is the ceiling of durable writes on the file
// system of $TMPDIR: each iteration appends 8 MiB in 1 MiB writes and then
// fsyncs the file. Past 256 MiB the file is replaced by a fresh one (inside
// the timed loop, as a block store also creates and removes files).
func BenchmarkLimitFsyncWrite(b *testing.B) {
	dir := b.TempDir()
	// Every byte written is fresh random data, made by another goroutine
	// (the second core) so that the disk never idles: this machine's
	// virtual disk writes data it has seen before about 4x faster (measured:
	// 338 MB/s for a new GiB, 1300 MB/s rewriting it) and absorbs bursts
	// that pauses let it drain; casd's ciphertext is always new, and add
	// writes without pause.
	full, empty := make(chan []byte, 2), make(chan []byte, 3)
	for range 3 {
		empty <- make([]byte, syncEvery)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seed := [32]byte{'l', 'i', 'm', 'i', 't'}
		binary.LittleEndian.PutUint64(seed[8:], uint64(time.Now().UnixNano()))
		fresh := rand.NewChaCha8(seed)
		for {
			select {
			case buf := <-empty:
				_, _ = fresh.Read(buf) // ChaCha8's Read never fails
				select {
				case full <- buf:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	b.Cleanup(func() { close(done); wg.Wait() })
	path := filepath.Join(dir, "fsync.bin")
	create := func() *os.File {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			b.Fatalf("create %s: %v", path, err)
		}
		return f
	}
	f := create()
	b.Cleanup(func() { f.Close() })
	written := 0
	b.SetBytes(syncEvery)
	b.ReportAllocs()
	for b.Loop() {
		if written >= rotateAt {
			if err := f.Close(); err != nil {
				b.Fatalf("close %s: %v", path, err)
			}
			if err := os.Remove(path); err != nil {
				b.Fatalf("remove %s: %v", path, err)
			}
			f = create()
			written = 0
		}
		data := <-full
		for i := range syncEvery / chunkSize {
			if _, err := f.Write(data[i*chunkSize : (i+1)*chunkSize]); err != nil {
				b.Fatalf("write %s: %v", path, err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatalf("fsync %s: %v", path, err)
		}
		empty <- data
		written += syncEvery
	}
}
