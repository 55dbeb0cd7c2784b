# bench-summary.awk condenses `go test -bench` output (bench.out) into three
# tables: the machine's limits (bench/ BenchmarkLimit*), casd end to end
# (bench/ BenchmarkOffline*) right below them with its throughput as a share
# of each limit, and then every other benchmark that reports MB/s.
#
# Usage: awk -f scripts/bench-summary.awk bench.out

/^pkg: / { pkg = $2; sub(/^github\.com\/casd\/casd\//, "", pkg); next }

/^Benchmark/ {
	name = $1
	sub(/^Benchmark/, "", name)
	sub(/-[0-9]+$/, "", name) # the GOMAXPROCS suffix
	mbs = ""; rss = ""; nsop = ""
	for (i = 3; i < NF; i++) {
		if ($(i + 1) == "MB/s") mbs = $i
		if ($(i + 1) == "peakRSS-MiB") rss = $i
		if ($(i + 1) == "ns/op") nsop = $i
	}
	if (pkg == "bench" && name ~ /^Limit/) {
		nlim++; limname[nlim] = substr(name, 6); limmbs[nlim] = mbs
	} else if (pkg == "bench") {
		ne2e++; e2ename[ne2e] = name; e2embs[ne2e] = mbs; e2erss[ne2e] = rss; e2ens[ne2e] = nsop
	} else if (mbs != "") {
		nother++; other[nother] = sprintf("  %-52s %10.1f MB/s", pkg "." name, mbs)
	}
}

END {
	if (nlim == 0 && ne2e == 0 && nother == 0) {
		print "bench-summary: no benchmark results in the input" > "/dev/stderr"
		exit 1
	}
	print ""
	print "== limits of this machine (one core; stdlib only) =="
	for (i = 1; i <= nlim; i++)
		printf "  %-24s %10.1f MB/s\n", limname[i], limmbs[i]
	print "== casd end to end (offline, real binary) =="
	for (i = 1; i <= ne2e; i++) {
		if (e2embs[i] == "") {
			printf "  %-24s %10s ns/op\n", e2ename[i], e2ens[i]
			continue
		}
		printf "  %-24s %10.1f MB/s  peak RSS %6.1f MiB\n", e2ename[i], e2embs[i], e2erss[i]
		line = ""
		for (j = 1; j <= nlim; j++) {
			if (limmbs[j] <= 0) continue
			# An add reads and fsyncs; a cat verifies and opens.
			if (e2ename[i] ~ /Add/ && limname[j] ~ /^Cat/) continue
			if (e2ename[i] ~ /Cat/ && limname[j] ~ /^(Add|Fsync)/) continue
			line = line sprintf("%s%.2fx %s", (line == "" ? "" : ", "), e2embs[i] / limmbs[j], limname[j])
		}
		if (line != "")
			printf "  %-24s = %s\n", "", line
	}
	if (ne2e == 0)
		print "  (none: did the casd binary build?)"
	print "== package benchmarks (MB/s) =="
	for (i = 1; i <= nother; i++)
		print other[i]
}
