#!/usr/bin/env bash
# demo.sh: four casd daemons on loopback. Node 2 adds a file that is
# replicated to two peers, shares it, and a node that holds no replica
# reads it by capability.
#
# Usage: scripts/demo.sh            (builds ./cmd/casd into a temp dir)
#        CASD_BIN=bin/casd scripts/demo.sh
# Needs: go (unless CASD_BIN is set), sha256sum or shasum.
set -euo pipefail

readonly NODES=4
readonly FACTOR=2
readonly READY_TIMEOUT=60 # seconds, per wait below

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/casd-demo.XXXXXX")"
pids=()

cleanup() {
	local code=$?
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ $code -ne 0 ]]; then
		for i in $(seq 1 "$NODES"); do
			if [[ -f "$tmp/node$i.log" ]]; then
				printf '\n--- log of node %d (last 20 lines) ---\n' "$i" >&2
				tail -n 20 "$tmp/node$i.log" >&2
			fi
		done
	fi
	rm -rf "$tmp"
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sha256() {
	if command -v sha256sum >/dev/null; then
		sha256sum | cut -d' ' -f1
	else
		shasum -a 256 | cut -d' ' -f1
	fi
}

repo() { printf '%s/node%d' "$tmp" "$1"; }

# casdn N ARGS...: run casd on node N's repo.
casdn() {
	local n=$1
	shift
	"$casd" --repo "$(repo "$n")" "$@"
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.1s until it
# succeeds, giving up after SECONDS.
wait_until() {
	local limit=$1 what=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@"; do
		((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what"
		sleep 0.1
	done
}

# is_ready N: node N's daemon printed "daemon is ready" (it prints it once
# its API answers) and still runs.
is_ready() {
	kill -0 "${pids[$1 - 1]}" 2>/dev/null || die "the daemon of node $1 exited; see its log above"
	grep -qx 'daemon is ready' "$tmp/node$1.log"
}

# start N: start node N's daemon in the background, its output in its log.
start() {
	# Create the log first: the background job's redirection opens it only
	# once that job runs, which may be after is_ready first reads it.
	: >"$tmp/node$1.log"
	# casd itself, not a function: $! must be the daemon's PID.
	"$casd" --repo "$(repo "$1")" daemon >>"$tmp/node$1.log" 2>&1 &
	pids+=("$!")
}

# connected_peers N: how many peers node N's daemon is connected to.
connected_peers() {
	casdn "$1" peers --json | grep -c '"connected": true' || true
}

all_connected() { [[ "$(connected_peers 1)" -ge $((NODES - 1)) ]]; }

step "building casd"
if [[ -n "${CASD_BIN:-}" ]]; then
	casd="$(cd "$(dirname "$CASD_BIN")" && pwd)/$(basename "$CASD_BIN")"
	[[ -x "$casd" ]] || die "CASD_BIN=$CASD_BIN is not an executable"
	echo "using $casd"
else
	root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
	casd="$tmp/casd"
	(cd "$root" && go build -o "$casd" ./cmd/casd)
	echo "built $casd"
fi
"$casd" version

step "initializing $NODES repos under $tmp (profile local: loopback, random ports)"
for i in $(seq 1 "$NODES"); do
	casdn "$i" init --profile=local
	casdn "$i" config Replication.Factor "$FACTOR"
done

step "starting the daemon of node 1"
start 1
wait_until "$READY_TIMEOUT" "node 1 to be ready" is_ready 1
boot="$(sed -n 's/^swarm listening on \(.*\/tcp\/[0-9]*\/p2p\/.*\)$/\1/p' "$tmp/node1.log" | head -n 1)"
[[ -n "$boot" ]] || die "node 1 printed no TCP listen address"
echo "node 1 listens on $boot"

step "bootstrapping nodes 2..$NODES from node 1 and starting them"
for i in $(seq 2 "$NODES"); do
	casdn "$i" config Bootstrap "[\"$boot\"]"
	start "$i"
done
for i in $(seq 2 "$NODES"); do
	wait_until "$READY_TIMEOUT" "node $i to be ready" is_ready "$i"
	echo "node $i is ready: $(sed -n 's/^peer identity: //p' "$tmp/node$i.log")"
done
wait_until "$READY_TIMEOUT" "node 1 to connect to every other node" all_connected
echo "node 1 is connected to $(connected_peers 1) peers"

step "adding a generated 8 MiB file on node 2 (Replication.Factor $FACTOR)"
head -c $((8 << 20)) /dev/urandom >"$tmp/demo.bin"
want="$(sha256 <"$tmp/demo.bin")"
cid="$(casdn 2 add --progress=false -q "$tmp/demo.bin")"
echo "added $cid demo.bin (sha256 $want)"

step "status of $cid on node 2"
status="$(casdn 2 status "$cid")"
echo "$status"

# The reader is a node that is neither the owner nor a replica, so that it
# really fetches the file from its peers.
reader=""
for i in $(seq 1 "$NODES"); do
	id="$(sed -n 's/^peer identity: //p' "$tmp/node$i.log")"
	if [[ $i != 2 ]] && ! grep -q "$id" <<<"$status"; then
		reader=$i
	fi
done
[[ -n $reader ]] || die "every node holds a replica; nothing left to read from the network"

step "sharing $cid on node 2"
capability="$(casdn 2 share "$cid")"
echo "$capability"

step "node $reader (no replica) reads the file by capability, from the replicas"
got="$(casdn "$reader" cat "$capability" | sha256)"
echo "sha256 $got"
[[ "$got" == "$want" ]] || die "node $reader read different bytes: sha256 $got, want $want"
echo "node $reader read the exact bytes node 2 added"

step "node $reader cannot read it by the bare CID"
if casdn "$reader" cat "$cid" >/dev/null 2>"$tmp/err"; then
	die "node $reader read a file it does not own without a capability"
fi
cat "$tmp/err"

step "stopping the daemons"
for i in $(seq "$NODES" -1 1); do
	kill -TERM "${pids[$i - 1]}"
	wait "${pids[$i - 1]}" || die "the daemon of node $i exited with status $? after SIGTERM"
	echo "node $i stopped"
done
pids=()

step "demo finished"
