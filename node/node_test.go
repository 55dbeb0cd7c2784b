package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/config"
	"github.com/casd/casd/core"
	"github.com/casd/casd/dag"
	"github.com/casd/casd/node"
)

// newRepo initialises a repo with the local profile in a temp dir.
func newRepo(t testing.TB, edit func(*config.Config)) *config.Repo {
	t.Helper()
	repo, err := config.Init(filepath.Join(t.TempDir(), "repo"), config.InitOptions{Profile: config.ProfileLocal})
	require.NoError(t, err)
	if edit != nil {
		cfg := repo.Config.Clone()
		edit(cfg)
		require.NoError(t, repo.SaveConfig(cfg))
	}
	return repo
}

func openNode(t testing.TB, repo *config.Repo, online bool) *node.Node {
	t.Helper()
	n, err := node.Open(t.Context(), repo, node.Options{Online: online})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

func randomData(t testing.TB, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func addBytes(t testing.TB, n *node.Node, data []byte, name string) *core.AddResult {
	t.Helper()
	res, err := n.Add(t.Context(), bytes.NewReader(data), core.AddOptions{Name: name, Mode: 0o644})
	require.NoError(t, err)
	return res
}

func cat(ctx context.Context, n *node.Node, ref string) ([]byte, core.FileInfo, error) {
	var buf bytes.Buffer
	var info core.FileInfo
	err := n.Cat(ctx, ref, func(fi core.FileInfo) (io.Writer, error) { info = fi; return &buf, nil })
	return buf.Bytes(), info, err
}

func TestOfflineFileLifecycle(t *testing.T) {
	n := openNode(t, newRepo(t, nil), false)
	ctx := t.Context()
	data := randomData(t, 3<<20+5)
	res := addBytes(t, n, data, "report 2026.pdf")
	require.EqualValues(t, len(data), res.Size)
	require.Equal(t, "application/pdf", res.MediaType)

	got, info, err := cat(ctx, n, res.Cid)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	require.Equal(t, "report 2026.pdf", info.Name)

	got, _, err = cat(ctx, n, res.Capability)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))

	share, err := n.Share(ctx, res.Cid)
	require.NoError(t, err)
	require.Equal(t, res.Capability, share)

	ls, err := n.Ls(ctx)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.Equal(t, core.ListEntry{Cid: res.Cid, Name: "report 2026.pdf", Size: int64(len(data)), Added: ls[0].Added}, ls[0])

	var refs []string
	require.NoError(t, n.Refs(ctx, res.Cid, func(c string) error { refs = append(refs, c); return nil }))
	require.Equal(t, res.Cid, refs[0])
	require.Len(t, refs, 5, "root and four chunks")

	st, err := n.RepoStat(ctx)
	require.NoError(t, err)
	require.Equal(t, 5, st.Blocks)
	require.Equal(t, 1, st.Files)

	rep, err := n.RepoVerify(ctx)
	require.NoError(t, err)
	require.Equal(t, 5, rep.Checked)
	require.Empty(t, rep.Corrupt)
	require.Empty(t, rep.Missing)

	gc, err := n.RepoGC(ctx)
	require.NoError(t, err)
	require.Zero(t, gc.Removed)

	bs, err := n.BlockStat(ctx, refs[1])
	require.NoError(t, err)
	require.Greater(t, bs.Size, 1<<20)
	var raw bytes.Buffer
	require.NoError(t, n.BlockGet(ctx, refs[1], &raw))
	require.Equal(t, bs.Size, raw.Len())
}

func TestOfflineErrorKinds(t *testing.T) {
	n := openNode(t, newRepo(t, nil), false)
	other := openNode(t, newRepo(t, nil), false)
	ctx := t.Context()
	res := addBytes(t, n, randomData(t, 2<<20), "a.bin")
	foreign := addBytes(t, other, randomData(t, 10), "b.bin")
	var chunk string
	require.NoError(t, n.Refs(ctx, res.Cid, func(c string) error { chunk = c; return nil }))

	wrongKey, err := dag.ParseCapability(res.Capability)
	require.NoError(t, err)
	wrongKey.Key[0] ^= 1

	cases := []struct {
		name string
		ref  string
		want core.Kind
	}{
		{"not a CID", "hello", core.KindBadInput},
		{"unknown CID", foreign.Cid, core.KindNotFound},
		{"chunk CID", chunk, core.KindIntegrity},
		{"wrong key", wrongKey.String(), core.KindIntegrity},
		{"mistyped capability", mistype(res.Capability), core.KindBadInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := cat(ctx, n, tc.ref)
			require.Error(t, err)
			require.Equal(t, tc.want, core.KindOf(err), "error: %v", err)
		})
	}

	require.ErrorIs(t, n.Connect(ctx, "/ip4/127.0.0.1/tcp/1"), core.ErrOffline)
}

func TestOfflineCorruptBlockFailsCatAndVerify(t *testing.T) {
	repo := newRepo(t, nil)
	n := openNode(t, repo, false)
	ctx := t.Context()
	res := addBytes(t, n, randomData(t, 2<<20), "a.bin")
	var chunk string
	require.NoError(t, n.Refs(ctx, res.Cid, func(c string) error { chunk = c; return nil }))

	var path string
	require.NoError(t, filepath.WalkDir(repo.BlocksDir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == chunk {
			path = p
		}
		return err
	}))
	require.NotEmpty(t, path)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[len(data)/2] ^= 0x01
	require.NoError(t, os.WriteFile(path, data, 0o600))

	_, _, err = cat(ctx, n, res.Cid)
	require.Error(t, err)
	require.Equal(t, core.KindIntegrity, core.KindOf(err))

	rep, err := n.RepoVerify(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{chunk}, rep.Corrupt)
}

// mistype changes the middle character of a token to another letter.
func mistype(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}
