// Package bench holds casd's benchmark harness; it has no non-test code.
//
// Run it with `make bench`, or for a quick pass:
//
//	CASD_BENCH_SIZE=256MiB go test -run='^$' -bench=. -benchmem ./bench/
//
// # Limits
//
// The BenchmarkLimit* benchmarks measure what this machine can do at best,
// on one core and with the standard library only: SHA-256 over 1 MiB, an
// AES-256-GCM seal of 1 MiB, appending 1 MiB blocks to a file with an fsync
// every 8 MiB, and the per-chunk CPU work of add (hash, derive the key, seal,
// hash the ciphertext) and of cat (verify, open). casd's own figures are best
// read as ratios to these: an add that runs at 80% of LimitAddChunk is bound
// by cryptography, not by casd. casd may spread chunks over several cores,
// so a ratio above 1 is possible and says how well it does so.
//
// # End to end
//
// BenchmarkOfflineAdd and BenchmarkOfflineCat run the real casd binary on a
// file of random bytes, without a daemon, and report throughput (MB/s, from
// SetBytes) and the peak resident set size of the casd process
// (peakRSS-MiB, the largest over all iterations). Memory must stay bounded by
// the chunk window, whatever the file size.
//
// The binary is built from ./cmd/casd once per run into a temporary
// directory, unless $CASD_BIN names one. The file is 1 GiB unless
// $CASD_BENCH_SIZE says otherwise ("256MiB", "4GiB", "100MB", or a byte
// count). The temporary files live under $TMPDIR, so the fsync limit and the
// end-to-end runs measure the same file system; all of them are removed when
// the run ends.
package bench
