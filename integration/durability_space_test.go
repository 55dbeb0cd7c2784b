package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
)

// TestQuotaCountsOnlyReplicas (durability, point 5): a holder whose own
// files take twice its 4 MiB quota still takes a 1 MiB replica from an
// owner's daemon; repo stat says own, offered (the replica), quota and
// what is left; an offer that would take the replicas past the quota is
// refused with a reason that starts "over quota:", and the owner's add of
// a file that does not fit reports 0 of 1 replicas.
func TestQuotaCountsOnlyReplicas(t *testing.T) {
	t.Parallel()
	const quota = 4 * mib
	holder := newNode(t)
	holder.requireOK(t, holder.run(t, "config", "Storage.Quota", fmt.Sprint(quota)))
	holder.add(t, writeFile(t, t.TempDir(), "own.bin", randBytes(8*mib)))
	hd := startDaemon(t, holder)

	owner := newNode(t)
	owner.requireOK(t, owner.run(t, "config", "Replication.Factor", "1"))
	startDaemon(t, owner)
	owner.requireOK(t, owner.run(t, "connect", hd.tcpAddr(t)))

	small := owner.add(t, writeFile(t, t.TempDir(), "small.bin", randBytes(mib)))
	st := status(t, owner, small)
	check(t, len(st.Replicas) == 1 && st.Replicas[0] == hd.ID,
		"the 1 MiB file is not on the holder (its own files counted against its quota?): %+v", st)

	sp := holder.repoStat(t)
	t.Logf("holder repo stat: %+v", sp)
	check(t, sp.Own > 8*mib && sp.Own > sp.Quota, "own %d bytes, want the 8 MiB file, past the quota", sp.Own)
	check(t, sp.Offered > mib && sp.Offered < mib+64<<10, "offered %d bytes, want the 1 MiB replica", sp.Offered)
	check(t, sp.Quota == quota && sp.FreeToOffer == quota-sp.Offered, "quota %d, free to offer %d; want %d, quota less offered",
		sp.Quota, sp.FreeToOffer, quota)
	check(t, sp.Bytes == sp.Own+sp.Offered+sp.Cached, "bytes %d is not own+offered+cached %+v", sp.Bytes, sp)
	res := holder.run(t, "repo", "stat")
	holder.requireOK(t, res)
	for _, line := range []string{fmt.Sprintf("offered: %d\n", sp.Offered), fmt.Sprintf("quota: %d\n", quota),
		fmt.Sprintf("free to offer: %d\n", sp.FreeToOffer), fmt.Sprintf("own: %d\n", sp.Own)} {
		check(t, strings.Contains(res.out(), line), "repo stat text lacks %q: %s", line, res.out())
	}

	// An offer past the quota, with the replica held, is refused.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stranger, err := adversary.New(ctx, adversary.Options{})
	noErr(t, err, "start the stranger")
	t.Cleanup(func() { noErr(t, stranger.Close(), "close the stranger") })
	holderID, err := stranger.Connect(ctx, hd.tcpAddr(t))
	noErr(t, err)
	f := newStrangerFile(t, 3*mib+mib/2)
	_, err = protocol.Store(ctx, stranger.Host, holderID, stranger.Owner, f.root, f.all(), uint64(len(f.blocks)), f.bytes)
	var rerr *protocol.RemoteError
	check(t, errors.As(err, &rerr) && strings.HasPrefix(rerr.Reason, "over quota:"),
		"an offer past the quota: %v; want a refusal that starts \"over quota:\"", err)
	t.Logf("refusal: %s", rerr.Reason)

	res = owner.run(t, "add", writeFile(t, t.TempDir(), "large.bin", randBytes(4*mib)))
	check(t, res.code == exitFailure && strings.Contains(requireErrLine(t, res), "0 of 1"),
		"add of a file past the holder's quota: %s; want exit 1, 0 of 1 replicas", res)
}
