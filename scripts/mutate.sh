#!/usr/bin/env bash
# mutate.sh runs mutation testing (go-gremlins) on casd's core packages and
# prints each package's test efficacy and mutator coverage.
#
# Usage: scripts/mutate.sh [PKG...]   (default: dag blockstore crypt protocol config)
#
# Environment:
#   GO          the go command (default go)
#   GREMLINS    the pinned tool, installed with `go install` into bin/tools
#               (default github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0)
#   WORKERS     mutants tested at once (default 2; the machine is shared)
#   TIMEOUT_COEFFICIENT, TIMEOUT_FLOOR
#               a mutant's tests time out after this many times the
#               package's (uncached) test run, but never sooner than
#               TIMEOUT_FLOOR seconds (defaults 4 and 15): a mutant's run also
#               compiles, which a fast package's test run does not show
#   MIN_EFFICACY
#               if set, fail when a package's efficacy is below this percent
#
# Test efficacy is KILLED / (KILLED + LIVED): how many of the mutants that
# the tests run over make a test fail. Mutator coverage is (KILLED + LIVED) /
# all mutants: how many mutants sit in code the tests run at all. Timed-out
# mutants count in neither. Each package's tests (only its own, as gremlins
# runs them) are what has to catch its mutants. The test kits
# (blockstoretest, dagtest, ...) are test code and the code generated from
# protocol/pb/cas.proto is not ours to test: neither is mutated. Reports
# go to bin/mutate/<pkg>.txt and, machine readable, bin/mutate/<pkg>.json.
set -euo pipefail

go="${GO:-go}"
gremlins_pkg="${GREMLINS:-github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0}"
workers="${WORKERS:-2}"
coef="${TIMEOUT_COEFFICIENT:-4}"
floor="${TIMEOUT_FLOOR:-15}"
cd "$(dirname "$0")/.."
root="$PWD"

if [ "$#" -eq 0 ]; then
	set -- dag blockstore crypt protocol config
fi

tools="$root/bin/tools"
mkdir -p "$tools" "$root/bin/mutate"
GOBIN="$tools" GOFLAGS= "$go" install "$gremlins_pkg"
gremlins="$tools/gremlins"

# -count=1: gremlins times the coverage run to set each mutant's timeout,
# and a cached test result would make that timeout far too short.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-count=1"

summary=()
status=0
start=$SECONDS
for pkg in "$@"; do
	pkg="${pkg#./}"
	pkg="${pkg%/}"
	out="$root/bin/mutate/${pkg//\//_}"
	t0=$SECONDS
	# gremlins sets the timeout from its coverage run, as coefficient times
	# its duration: time the same tests here to apply the floor.
	t_start=$(date +%s.%N)
	"$go" test "./$pkg/..." >/dev/null 2>&1 || true # gremlins reports failing tests
	t_end=$(date +%s.%N)
	pcoef="$(awk -v s="$t_start" -v e="$t_end" -v c="$coef" -v f="$floor" 'BEGIN {
		d = e - s; if (d < 0.1) d = 0.1
		k = c; if (k * d < f) k = int(f / d) + 1
		print k }')"
	echo "== mutate ./$pkg (workers $workers, timeout coefficient $pcoef)"
	rc=0
	"$gremlins" unleash \
		--workers "$workers" \
		--timeout-coefficient "$pcoef" \
		--exclude-files '^[a-z0-9]+test/' \
		--exclude-files '(^|/)internal/wire/[^/]*\.pb\.go$' \
		--output "$out.json" \
		"./$pkg" 2>&1 | tee "$out.txt" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "mutate: gremlins failed on ./$pkg (exit $rc)" >&2
		status=1
	fi
	eff="$(sed -n 's/^Test efficacy: *//p' "$out.txt" | tail -1)"
	cov="$(sed -n 's/^Mutator coverage: *//p' "$out.txt" | tail -1)"
	counts="$(grep -E '^Killed: ' "$out.txt" | tail -1 || true)"
	timed="$(grep -E '^Timed out: ' "$out.txt" | tail -1 || true)"
	summary+=("$(printf '%-12s efficacy %-8s coverage %-8s %s, %s (%ds)' \
		"$pkg" "${eff:-?}" "${cov:-?}" "${counts:-no result}" "${timed:-}" $((SECONDS - t0)))")
	if [ -n "${MIN_EFFICACY:-}" ] && [ -n "$eff" ] &&
		awk -v e="${eff%\%}" -v m="$MIN_EFFICACY" 'BEGIN { exit !(e < m) }'; then
		echo "mutate: ./$pkg efficacy $eff is below $MIN_EFFICACY%" >&2
		status=1
	fi
done

echo
echo "mutate: summary ($((SECONDS - start))s)"
printf '  %s\n' "${summary[@]}"
echo "  lived mutants: grep LIVED bin/mutate/<pkg>.txt"
exit "$status"
