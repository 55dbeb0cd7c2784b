package node

import (
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore/blockstoretest"
)

// TestQuotaIgnoresOwnFiles: the quota caps what a node holds for others
// only. A node whose own files are larger than its quota still accepts a
// replica that fits; the next one, past the quota with the first, is
// refused with "over quota:"; a backend built again over the same store
// (a restart) measures the replicas held and refuses it too; once the
// first replica is removed it fits.
func TestQuotaIgnoresOwnFiles(t *testing.T) {
	src, holder := openOffline(t), openOffline(t)
	const quota = 5 << 19 // 2.5 MiB
	_, ownBytes := addFile(t, holder, 4<<20)
	require.Greater(t, ownBytes, int64(quota))
	b := &storeBackend{store: holder.store, quota: quota, announce: func(cid.Cid) {}}
	small, smallBytes := addFile(t, src, 1<<20)
	large, _ := addFile(t, src, 2<<20)
	owner := ownerKey(t)
	lease := time.Now().Add(time.Hour)

	require.NoError(t, receive(t, b, src, small, owner, lease), "own files counted against the quota")
	require.Equal(t, smallBytes, offeredNow(t, b))
	err := receive(t, b, src, large, owner, lease)
	require.ErrorContains(t, err, "over quota:")
	require.ErrorContains(t, err, "held for others")

	restarted := &storeBackend{store: holder.store, quota: quota, announce: func(cid.Cid) {}}
	require.Equal(t, smallBytes, offeredNow(t, restarted), "the walk at the first offer measures what is held for others, own files apart")
	require.ErrorContains(t, receive(t, restarted, src, large, owner, lease), "over quota:")
	require.NoError(t, restarted.Remove(t.Context(), owner, small))
	require.NoError(t, receive(t, restarted, src, large, owner, lease), "a removed replica's room did not come back")
}

// TestRepoStatSpace: repo stat divides the store's bytes into own files,
// replicas held for others and cache, each block once, and says what is
// left of the quota.
func TestRepoStatSpace(t *testing.T) {
	src, holder := openOffline(t), openOffline(t)
	_, ownBytes := addFile(t, holder, 3<<20)
	b := &storeBackend{store: holder.store, quota: 1 << 30, announce: func(cid.Cid) {}}
	replica, replicaBytes := addFile(t, src, 2<<20)
	require.NoError(t, receive(t, b, src, replica, ownerKey(t), time.Now().Add(time.Hour)))
	loose := blockstoretest.NewBlock([]byte("a cached block no pin keeps"))
	require.NoError(t, holder.store.Put(t.Context(), loose))

	st, err := holder.RepoStat(t.Context())
	require.NoError(t, err)
	quota := holder.repo.Config.Storage.Quota
	require.Equal(t, ownBytes, st.Own)
	require.Equal(t, replicaBytes, st.Offered)
	require.Equal(t, int64(len(loose.Data)), st.Cached)
	require.Equal(t, st.Bytes, st.Own+st.Offered+st.Cached)
	require.Equal(t, quota, st.Quota)
	require.Equal(t, quota-replicaBytes, st.FreeToOffer)
}
