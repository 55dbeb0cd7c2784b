# bench-summary.awk condenses `go test -bench` output (bench.out) into three
# tables: the machine's limits (bench/ BenchmarkLimit*); right below them casd
# end to end (the other bench/ benchmarks: offline add and cat, network
# retrieval), each with its peak RSS and its throughput as a multiple of the
# limits that bound it; then every other benchmark that reports MB/s.
#
# Usage: awk -f scripts/bench-summary.awk bench.out

/^pkg: / { pkg = $2; sub(/^github\.com\/casd\/casd\//, "", pkg); next }

/^Benchmark/ {
	name = $1
	sub(/^Benchmark/, "", name)
	sub(/-[0-9]+$/, "", name) # the GOMAXPROCS suffix
	mbs = ""; rss = ""; rssunit = ""; nsop = ""
	for (i = 3; i < NF; i++) {
		if ($(i + 1) == "MB/s") mbs = $i
		if ($(i + 1) ~ /RSS-MiB$/) { rss = $i; rssunit = $(i + 1); sub(/-MiB$/, "", rssunit) }
		if ($(i + 1) == "ns/op") nsop = $i
	}
	if (pkg == "bench" && name ~ /^Limit/) {
		nlim++; limname[nlim] = substr(name, 6); limmbs[nlim] = mbs
	} else if (pkg == "bench") {
		ne2e++; e2ename[ne2e] = name; e2embs[ne2e] = mbs; e2ens[ne2e] = nsop
		e2erss[ne2e] = rss; e2erssunit[ne2e] = rssunit
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
		printf "  %-40s %10.1f MB/s\n", limname[i], limmbs[i]
	print "== casd end to end (real binary) =="
	for (i = 1; i <= ne2e; i++) {
		if (e2embs[i] == "") {
			printf "  %-40s %10s ns/op\n", e2ename[i], e2ens[i]
			continue
		}
		rsstext = e2erss[i] == "" ? "" : sprintf("  %s %.1f MiB", e2erssunit[i], e2erss[i])
		printf "  %-40s %10.1f MB/s%s\n", e2ename[i], e2embs[i], rsstext
		line = ""
		for (j = 1; j <= nlim; j++) {
			if (limmbs[j] <= 0) continue
			# An add (or store) seals and fsyncs; anything else reads:
			# verifies and opens.
			if (e2ename[i] ~ /Add|Store|Put/) {
				if (limname[j] ~ /^Cat/) continue
			} else if (limname[j] ~ /^(Add|Fsync)/) continue
			line = line sprintf("%s%.2fx %s", (line == "" ? "" : ", "), e2embs[i] / limmbs[j], limname[j])
		}
		if (line != "")
			printf "  %-40s = %s\n", "", line
	}
	if (ne2e == 0)
		print "  (none: did the casd binary build?)"
	print "== package benchmarks (MB/s) =="
	for (i = 1; i <= nother; i++)
		print other[i]
}
