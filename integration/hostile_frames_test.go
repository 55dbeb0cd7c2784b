package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
)

// TestHostileStalledFrames (hostile peers, point 7): one peer opens 64
// store streams, has each offer accepted, then sends each a Block frame's
// length prefix (4 MiB) and all of the frame but its last byte, and
// stalls. The victim's resident memory must stay below what it was before
// plus 100 MiB: frame buffers are reserved through the resource manager,
// which refuses most of them. The victim runs a binary built without the
// race detector (measuredBin), whose memory is what a user's daemon holds.
func TestHostileStalledFrames(t *testing.T) {
	t.Parallel()
	n := newVictim(t)
	n.bin = measuredBin(t)
	path := writeRandomFile(t, t.TempDir(), "own.bin", 2*mib)
	root := n.add(t, path)
	d := startDaemon(t, n)
	p, victim := newHostile(t, d)
	pid := d.cmd.Process.Pid
	before := rssOf(t, pid)

	const streams, size = 64, 4 << 20
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second) // within the victim's idle timeout
	defer cancel()
	st := p.StallFrames(ctx, victim, streams, size)
	defer st.Stop()
	t.Logf("%d stalled streams accepted (%d frames filled) of %d", st.Streams, st.Filled, streams)
	requireRSSBound(t, pid, before, fmt.Sprintf("%d stalled 4 MiB frames", st.Filled))
	st.Stop()
	requireIntact(t, n, root, path)
}

// requireRSSBound samples the victim's resident memory under attack (see
// peakRSS) and requires its peak below what it was before plus 100 MiB.
func requireRSSBound(t testing.TB, pid int, before int64, attack string) {
	t.Helper()
	peak := peakRSS(t, pid, before)
	t.Logf("victim RSS %d MiB before, peak %d MiB under %s", before>>20, peak>>20, attack)
	check(t, peak < before+100*mib, "victim RSS went from %d MiB to %d MiB under %s, want < +100 MiB",
		before>>20, peak>>20, attack)
}

// peakRSS samples the resident memory of process pid for 2 s and returns
// the largest figure, or floor if larger.
func peakRSS(t testing.TB, pid int, floor int64) int64 {
	t.Helper()
	peak := floor
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for range 40 {
		peak = max(peak, rssOf(t, pid))
		<-tick.C
	}
	return peak
}

// TestHostileStalledGets (hostile peers, point 7, the get side): one peer
// opens 64 get streams, asks each for the victim's 4 MiB chunk, and reads
// nothing. The victim's resident memory must stay below what it was
// before plus 100 MiB: the victim reserves each block it sends through the
// resource manager, which refuses most of them (the victim runs
// measuredBin).
func TestHostileStalledGets(t *testing.T) {
	t.Parallel()
	n := newVictim(t, "Chunker.Size", strconv.Itoa(4<<20))
	n.bin = measuredBin(t)
	path := writeRandomFile(t, t.TempDir(), "own.bin", 4<<20)
	root := n.add(t, path)
	d := startDaemon(t, n)
	p, victim := newHostile(t, d)
	m := fetchManifest(t, attackCtx(t), p, victim, root)
	check(t, m.Height == 0 && len(m.Links) == 1, "root of height %d with %d links, want one chunk", m.Height, len(m.Links))
	pid := d.cmd.Process.Pid
	before := rssOf(t, pid)

	const streams = 64
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second) // within the victim's idle timeout
	defer cancel()
	st := p.StallGets(ctx, victim, streams, m.Links)
	defer st.Stop()
	t.Logf("%d stalled get streams (%d requests sent) of %d", st.Streams, st.Filled, streams)
	requireRSSBound(t, pid, before, fmt.Sprintf("%d stalled gets of a 4 MiB block", st.Filled))
	st.Stop()
	requireIntact(t, n, root, path)
}

// TestHostileFraming (hostile peers, point 16): a frame whose length
// prefix is not minimally encoded, or is 10 bytes long, makes the victim
// reset the stream; each counts as a strike, so the third gets the peer
// banned: its connections are closed and its next dial is refused, while
// a fresh peer still connects.
func TestHostileFraming(t *testing.T) {
	t.Parallel()
	n := newVictim(t)
	d := startDaemon(t, n)
	p, victim := newHostile(t, d)
	lies := []adversary.PrefixLie{adversary.NonMinimalPrefix, adversary.OverlongPrefix, adversary.NonMinimalPrefix}
	for i, l := range lies {
		noErr(t, p.SendBadPrefix(attackCtx(t), victim, l), fmt.Sprintf("lie %d (%v): the victim must reset the stream", i+1, l))
	}
	waitFor(t, 10*time.Second, func() (bool, string) {
		c := p.Host.Network().Connectedness(victim)
		return c != network.Connected, fmt.Sprintf("after %d framing lies the liar is still connected (%v)", len(lies), c)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	probe := adversary.CID([]byte("probe"))
	// The liar's own handshake may complete before the victim's gater
	// refuses the connection, so what counts is that it is not served.
	_, err := p.Connect(ctx, d.tcpAddr(t))
	if err == nil {
		_, err = protocol.HasRoot(ctx, p.Host, victim, probe)
	}
	check(t, err != nil, "after %d framing lies, the liar dialed the victim again and was served", len(lies))
	t.Logf("the banned liar's dial: %v", err)

	fresh, _ := newHostile(t, d)
	_, err = protocol.HasRoot(ctx, fresh.Host, victim, probe)
	noErr(t, err, "a fresh peer asks the victim for a root")
	check(t, !strings.Contains(fmt.Sprint(peerList(t, n, false)), p.ID().String()),
		"the victim lists the banned peer %s among its connected peers", p.ID())
}
