package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/casd/casd/internal/adversary"
	"github.com/casd/casd/protocol"
)

// TestHostilePinFlood (hostile peers, point 8): a node keeps at most
// Storage.MaxPinsPerOwner (here 3) replica pins per owner key. A stranger
// that offers 20 tiny roots gets 3 pinned and the other 17 refused with a
// reason naming the cap; a real owner's daemon that adds 5 tiny files gets
// its first 3 replicated and the last 2 reported under-replicated ("0 of
// 1"), while its own copies stay whole.
func TestHostilePinFlood(t *testing.T) {
	t.Parallel()
	const limit, strangerRoots, ownerFiles = 3, 20, 5
	victim, owner := newNode(t), newNode(t)
	victim.requireOK(t, victim.run(t, "config", "Storage.MaxPinsPerOwner", fmt.Sprint(limit)))
	vd := startDaemon(t, victim)
	boot, err := json.Marshal([]string{vd.tcpAddr(t)})
	noErr(t, err)
	owner.requireOK(t, owner.run(t, "config", "Bootstrap", string(boot)))
	owner.requireOK(t, owner.run(t, "config", "Replication.Factor", "1"))
	startDaemon(t, owner)
	waitConnected(t, victim, owner.id)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stranger, err := adversary.New(ctx, adversary.Options{})
	noErr(t, err, "start the stranger")
	t.Cleanup(func() { noErr(t, stranger.Close(), "close the stranger") })
	victimID, err := stranger.Connect(ctx, vd.tcpAddr(t))
	noErr(t, err)
	start := time.Now()
	var pinned, refused int
	for range strangerRoots {
		f := newStrangerFile(t, 100)
		res, err := protocol.Store(ctx, stranger.Host, victimID, stranger.Owner, f.root, f.all(), uint64(len(f.blocks)), f.bytes)
		switch {
		case err == nil && res.Complete:
			pinned++
		case err != nil && strings.Contains(err.Error(), "over the pin cap") &&
			strings.Contains(err.Error(), "Storage.MaxPinsPerOwner"):
			refused++
		default:
			t.Fatalf("store of a tiny root: %+v, %v", res, err)
		}
	}
	t.Logf("%d tiny roots offered in %v: %d pinned, %d refused", strangerRoots, time.Since(start).Round(time.Millisecond), pinned, refused)
	check(t, pinned == limit && refused == strangerRoots-limit, "%d of the stranger's roots pinned, %d refused; want %d and %d",
		pinned, refused, limit, strangerRoots-limit)

	for i := range ownerFiles {
		res := owner.run(t, "add", writeFile(t, t.TempDir(), fmt.Sprintf("tiny-%d", i), []byte(fmt.Sprint("tiny file ", i))))
		if i < limit {
			owner.requireOK(t, res)
			continue
		}
		check(t, res.code == exitFailure, "add of file %d past the victim's cap must exit 1: %s", i, res)
		check(t, strings.Contains(requireErrLine(t, res), "0 of 1"), "add of file %d must report 0 of 1 replicas: %s", i, res)
	}
	st := victim.repoStat(t)
	check(t, st.Pins == 2*limit, "the victim holds %d pins, want %d: %d per owner", st.Pins, 2*limit, limit)
	check(t, owner.repoStat(t).Files == ownerFiles, "the owner lists %d files, want %d", owner.repoStat(t).Files, ownerFiles)
	owner.requireOK(t, owner.run(t, "repo", "verify"))
	victim.requireOK(t, victim.run(t, "repo", "verify"))
}
