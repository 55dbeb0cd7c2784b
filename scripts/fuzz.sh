#!/usr/bin/env bash
# fuzz.sh runs every Go fuzz target of the module for a short time each.
#
# Usage: scripts/fuzz.sh [FUZZTIME]   (default 10s; any -fuzztime value)
#
# Go fuzzes one target of one package at a time, so this lists the targets
# with `go test -list` in every package that declares one and runs them in
# turn. A failing input is written to the package's testdata/fuzz directory,
# where it becomes a regular test case; the script stops at the first failure.
set -euo pipefail

fuzztime="${1:-10s}"
go="${GO:-go}"
cd "$(dirname "$0")/.."

mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . |
	grep -v '/testdata/' | xargs -r -n1 dirname | sort -u)
if [ "${#dirs[@]}" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

n=0
for dir in "${dirs[@]}"; do
	list="$("$go" test -list '^Fuzz' "$dir")" # fails the script if $dir does not build
	mapfile -t targets < <(grep -E '^Fuzz' <<<"$list" || true)
	for target in "${targets[@]}"; do
		echo "== $dir $target ($fuzztime)"
		"$go" test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$dir"
		n=$((n + 1))
	done
done
echo "fuzz: $n targets passed, $fuzztime each"
