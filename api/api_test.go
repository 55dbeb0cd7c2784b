package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/api"
	"github.com/casd/casd/core"
)

// env is a real server of a backend on a unix socket, and a client of it.
type env struct {
	c    *api.Client
	srv  *api.Server
	sock string

	stopOnce sync.Once
	served   chan error
}

// serve runs a server of bs (nil concerns not served) on a socket in a
// temporary directory until the test ends.
func serve(t testing.TB, bs api.Backends) *env {
	t.Helper()
	return serveServer(t, api.NewServerOf(bs))
}

// serveServer runs srv on a socket in a temporary directory until the test
// ends.
func serveServer(t testing.TB, srv *api.Server) *env {
	t.Helper()
	e := &env{srv: srv, sock: filepath.Join(t.TempDir(), "api.sock"), served: make(chan error, 1)}
	l, err := api.ListenUnix(e.sock)
	require.NoError(t, err)
	go func() { e.served <- e.srv.Serve(l) }()
	e.c, err = api.Dial(t.Context(), e.sock)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, e.c.Close())
		// A handler still running now is a bug of the test or the server;
		// the grace period makes it fail instead of hang.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, e.stop(t, ctx), "Shutdown")
	})
	return e
}

// stop shuts the server down (once) and checks that Serve returned nil.
func (e *env) stop(t testing.TB, ctx context.Context) (err error) {
	t.Helper()
	e.stopOnce.Do(func() {
		err = e.srv.Shutdown(ctx)
		require.NoError(t, recv(t, e.served), "Serve")
	})
	return err
}

// recv receives from ch, failing the test if nothing comes for a long time
// (a watchdog, so that a regression fails instead of hanging).
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting on a channel")
		panic("unreachable")
	}
}

// rawClient talks HTTP to the socket directly, to check the wire.
func rawClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// catAll cats ref through c and returns its info and bytes.
func catAll(ctx context.Context, c core.Files, ref string) (core.FileInfo, []byte, error) {
	var info core.FileInfo
	var buf bytes.Buffer
	err := c.Cat(ctx, ref, func(fi core.FileInfo) (io.Writer, error) {
		info = fi
		return &buf, nil
	})
	return info, buf.Bytes(), err
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// TestEndpoints runs every endpoint of a whole node, served by NewServer.
func TestEndpoints(t *testing.T) {
	f, nw := newStore(), &fakeNetwork{}
	e := serveServer(t, api.NewServer(fakeNode{f, &fakeRepo{}, nw}))
	c, ctx := e.c, t.Context()

	data := randomBytes(1, 100_000)
	res, err := c.Add(ctx, bytes.NewReader(data), core.AddOptions{Name: "hello.txt", Mode: 0o640, MediaType: "text/plain"})
	require.NoError(t, err)
	want := core.FileInfo{Cid: res.Cid, Name: "hello.txt", Size: int64(len(data)), Mode: 0o640, MediaType: "text/plain"}
	require.Equal(t, want, res.FileInfo)
	require.Equal(t, "cap-"+res.Cid, res.Capability)
	f.mu.Lock()
	require.Equal(t, core.AddOptions{Name: "hello.txt", Mode: 0o640, MediaType: "text/plain"}, f.lastAdd)
	f.mu.Unlock()
	file := res.Cid

	t.Run("cat", func(t *testing.T) {
		info, got, err := catAll(ctx, c, file)
		require.NoError(t, err)
		require.Equal(t, want, info)
		require.Equal(t, data, got)
	})
	t.Run("block/get", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, c.BlockGet(ctx, file, &buf))
		require.Equal(t, data, buf.Bytes())
	})
	t.Run("refs", func(t *testing.T) {
		var got []string
		require.NoError(t, c.Refs(ctx, file, func(cid string) error {
			got = append(got, cid)
			return nil
		}))
		require.Equal(t, refsOf(file), got)
	})
	t.Run("connect", func(t *testing.T) {
		const addr = "/ip4/10.1.2.3/tcp/4001/p2p/12D3KooWx"
		require.NoError(t, c.Connect(ctx, addr))
		nw.mu.Lock()
		defer nw.mu.Unlock()
		require.Equal(t, []string{addr}, nw.connected)
	})

	values := []struct {
		name string
		call func() (any, error)
		want any
	}{
		{"ls", func() (any, error) { return c.Ls(ctx) },
			[]core.ListEntry{{Cid: file, Name: "hello.txt", Size: int64(len(data)), Added: added}}},
		{"share", func() (any, error) { return c.Share(ctx, file) }, "cap-" + file},
		{"block/stat", func() (any, error) { return c.BlockStat(ctx, file) },
			&core.BlockStat{Cid: file, Size: len(data)}},
		{"repo/verify", func() (any, error) { return c.RepoVerify(ctx) },
			&core.VerifyReport{Checked: 7, Corrupt: []string{"bafkbad"}, Missing: []string{}}},
		{"repo/gc", func() (any, error) { return c.RepoGC(ctx) }, &core.GCResult{Removed: 3, Freed: 3 << 20}},
		{"repo/stat", func() (any, error) { return c.RepoStat(ctx) },
			&core.RepoStat{Path: "/repo", Version: 1, Blocks: 10, Bytes: 1 << 30, Pins: 2, Files: 2}},
		{"id", func() (any, error) { return c.ID(ctx) }, &core.IDInfo{
			ID: "12D3KooWfake", Addrs: []string{"/ip4/127.0.0.1/tcp/4001"},
			AgentVersion: "casd/test", Protocols: []string{"/cas/get/1.0"},
		}},
		{"peers", func() (any, error) { return c.Peers(ctx, false) },
			[]core.PeerInfo{{ID: "12D3KooWa", Addrs: []string{"/ip4/10.0.0.1/tcp/4001"}, Connected: true,
				Sources: []string{"bootstrap", "inbound"}, LastSeen: fakeSeen}}},
		{"peers all", func() (any, error) { return c.Peers(ctx, true) }, []core.PeerInfo{
			{ID: "12D3KooWa", Addrs: []string{"/ip4/10.0.0.1/tcp/4001"}, Connected: true,
				Sources: []string{"bootstrap", "inbound"}, LastSeen: fakeSeen},
			{ID: "12D3KooWb", Addrs: []string{"/ip4/10.0.0.2/udp/4001/quic-v1"},
				Sources: []string{"gossip"}, LastSeen: fakeSeen.Add(-time.Minute)},
		}},
		{"status", func() (any, error) { return c.Status(ctx, file) },
			&core.StatusInfo{Cid: file, Goal: 3, Replicas: []string{"12D3KooWa", "12D3KooWb"}}},
		{"repair one", func() (any, error) { return c.Repair(ctx, file) }, []core.RepairReport{repairOf(file)}},
		{"repair all", func() (any, error) { return c.Repair(ctx, "") },
			[]core.RepairReport{repairOf("bafka"), repairOf("bafkb")}},
	}
	for _, tc := range values {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	nw.mu.Lock()
	require.Equal(t, []bool{false, true}, nw.peersAll)
	nw.mu.Unlock()

	t.Run("rm", func(t *testing.T) {
		require.NoError(t, c.Remove(ctx, file))
		_, _, err := catAll(ctx, c, file)
		require.Equal(t, core.KindNotFound, core.KindOf(err), "removed")
		err = c.Remove(ctx, file)
		require.Equal(t, core.KindNotFound, core.KindOf(err))
		require.EqualError(t, err, "rm "+file+": node: not one of this node's files")
	})

	t.Run("not found", func(t *testing.T) {
		_, _, err := catAll(ctx, c, "bafknothere")
		require.Equal(t, core.KindNotFound, core.KindOf(err))
		require.EqualError(t, err, "cat bafknothere: fake: not found")
	})
}

func TestEmptyFile(t *testing.T) {
	e := serve(t, api.Backends{Files: newStore()})
	res, err := e.c.Add(t.Context(), strings.NewReader(""), core.AddOptions{Name: "empty"})
	require.NoError(t, err)
	require.Zero(t, res.Size)
	info, got, err := catAll(t.Context(), e.c, res.Cid)
	require.NoError(t, err)
	require.Equal(t, res.FileInfo, info)
	require.Empty(t, got)
}

func TestEmptyLists(t *testing.T) {
	e := serve(t, api.Backends{Files: newStore()})
	files, err := e.c.Ls(t.Context())
	require.NoError(t, err)
	require.Empty(t, files)

	// The wire says [] rather than null.
	resp, err := rawClient(e.sock).Post("http://casd/api/v0/ls", "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "[]\n", string(b))
}

var kinds = []struct {
	kind   core.Kind
	status int
}{
	{core.KindBadInput, http.StatusBadRequest},
	{core.KindNotFound, http.StatusNotFound},
	{core.KindIntegrity, http.StatusUnprocessableEntity},
	{core.KindBusy, http.StatusConflict},
	{core.KindOther, http.StatusInternalServerError},
}

// TestErrorKinds checks that every kind of error survives the trip, on
// every way the protocol reports errors.
func TestErrorKinds(t *testing.T) {
	data := randomBytes(2, 2<<20)
	calls := []struct {
		name      string
		failAfter int
		call      func(ctx context.Context, c *api.Client, cid string) error
		check     func(t *testing.T, out []byte)
	}{
		{name: "json", call: func(ctx context.Context, c *api.Client, _ string) error {
			_, err := c.RepoStat(ctx)
			return err
		}},
		{name: "cat before body", call: func(ctx context.Context, c *api.Client, cid string) error {
			_, _, err := catAll(ctx, c, cid)
			return err
		}},
		{name: "cat mid-stream", failAfter: 300_000, call: func(ctx context.Context, c *api.Client, cid string) error {
			_, got, err := catAll(ctx, c, cid)
			require.Equal(t, data[:300_000], got, "bytes before the error")
			return err
		}},
		{name: "block/get mid-stream", failAfter: 10, call: func(ctx context.Context, c *api.Client, cid string) error {
			var buf bytes.Buffer
			err := c.BlockGet(ctx, cid, &buf)
			require.Equal(t, data[:10], buf.Bytes(), "bytes before the error")
			return err
		}},
		{name: "refs before first", call: func(ctx context.Context, c *api.Client, cid string) error {
			return c.Refs(ctx, cid, func(string) error { return nil })
		}},
		{name: "refs mid-stream", failAfter: 2, call: func(ctx context.Context, c *api.Client, cid string) error {
			var got []string
			err := c.Refs(ctx, cid, func(c string) error { got = append(got, c); return nil })
			require.Equal(t, refsOf(cid)[:2], got)
			return err
		}},
		{name: "add before progress", call: func(ctx context.Context, c *api.Client, _ string) error {
			_, err := c.Add(ctx, bytes.NewReader(data), core.AddOptions{})
			return err
		}},
		{name: "add after progress", failAfter: 1 << 20, call: func(ctx context.Context, c *api.Client, _ string) error {
			var progress []int64
			_, err := c.Add(ctx, bytes.NewReader(data), core.AddOptions{Progress: func(n int64) { progress = append(progress, n) }})
			require.NotEmpty(t, progress, "progress before the error")
			return err
		}},
	}
	for _, k := range kinds {
		t.Run(string(k.kind), func(t *testing.T) {
			for _, tc := range calls {
				t.Run(tc.name, func(t *testing.T) {
					f := newStore()
					info := f.put(data, core.FileInfo{Name: "f"})
					msg := fmt.Sprintf("fake: %s trouble, ünïcødé ✗", k.kind)
					f.faults = faults{err: kindErr{k.kind, msg}, failAfter: tc.failAfter}
					e := serve(t, api.Backends{Files: f, Blocks: f, Repo: &fakeRepo{f.faults}})

					err := tc.call(t.Context(), e.c, info.Cid)
					require.Error(t, err)
					var ae *api.Error
					require.ErrorAs(t, err, &ae)
					require.Equal(t, msg, err.Error(), "message as is")
					require.Equal(t, k.kind, ae.Kind())
					require.Equal(t, k.kind, core.KindOf(err))
				})
			}
		})
	}
}

// TestNotServed leaves out one concern at a time: each of its endpoints
// answers that the daemon does not serve it, as an error of kind busy with
// status 409, while the other concerns are served as usual.
func TestNotServed(t *testing.T) {
	type call struct {
		path string
		run  func(ctx context.Context, c *api.Client, cid string) error
	}
	concerns := []struct {
		name  string
		drop  func(*api.Backends)
		calls []call
	}{
		{"files", func(bs *api.Backends) { bs.Files = nil }, []call{
			{"add", func(ctx context.Context, c *api.Client, _ string) error {
				_, err := c.Add(ctx, strings.NewReader("data"), core.AddOptions{Name: "f"})
				return err
			}},
			{"cat", func(ctx context.Context, c *api.Client, cid string) error {
				_, _, err := catAll(ctx, c, cid)
				return err
			}},
			{"ls", func(ctx context.Context, c *api.Client, _ string) error {
				_, err := c.Ls(ctx)
				return err
			}},
			{"share", func(ctx context.Context, c *api.Client, cid string) error {
				_, err := c.Share(ctx, cid)
				return err
			}},
			{"refs", func(ctx context.Context, c *api.Client, cid string) error {
				return c.Refs(ctx, cid, func(string) error { return nil })
			}},
		}},
		{"blocks", func(bs *api.Backends) { bs.Blocks = nil }, []call{
			{"block/get", func(ctx context.Context, c *api.Client, cid string) error {
				return c.BlockGet(ctx, cid, io.Discard)
			}},
			{"block/stat", func(ctx context.Context, c *api.Client, cid string) error {
				_, err := c.BlockStat(ctx, cid)
				return err
			}},
		}},
		{"repo", func(bs *api.Backends) { bs.Repo = nil }, []call{
			{"repo/verify", func(ctx context.Context, c *api.Client, _ string) error {
				_, err := c.RepoVerify(ctx)
				return err
			}},
			{"repo/gc", func(ctx context.Context, c *api.Client, _ string) error {
				_, err := c.RepoGC(ctx)
				return err
			}},
			{"repo/stat", func(ctx context.Context, c *api.Client, _ string) error {
				_, err := c.RepoStat(ctx)
				return err
			}},
		}},
		{"network", func(bs *api.Backends) { bs.Network = nil }, []call{
			{"id", func(ctx context.Context, c *api.Client, _ string) error {
				_, err := c.ID(ctx)
				return err
			}},
			{"connect", func(ctx context.Context, c *api.Client, _ string) error {
				return c.Connect(ctx, "/ip4/10.1.2.3/tcp/4001/p2p/12D3KooWx")
			}},
			{"peers", func(ctx context.Context, c *api.Client, _ string) error {
				_, err := c.Peers(ctx, true)
				return err
			}},
			{"status", func(ctx context.Context, c *api.Client, cid string) error {
				_, err := c.Status(ctx, cid)
				return err
			}},
		}},
	}
	for _, concern := range concerns {
		t.Run(concern.name, func(t *testing.T) {
			f := newStore()
			info := f.put([]byte("served"), core.FileInfo{Name: "f"})
			bs := api.Backends{Files: f, Blocks: f, Repo: &fakeRepo{}, Network: &fakeNetwork{}}
			concern.drop(&bs)
			e := serve(t, bs)
			msg := "api: this daemon does not serve " + concern.name

			for _, other := range concerns {
				for _, c := range other.calls {
					t.Run(c.path, func(t *testing.T) {
						err := c.run(t.Context(), e.c, info.Cid)
						if other.name != concern.name {
							require.NoError(t, err, "another concern is served")
							return
						}
						var ae *api.Error
						require.ErrorAs(t, err, &ae)
						require.Equal(t, msg, ae.Error())
						require.Equal(t, core.KindBusy, core.KindOf(err))

						resp, err := rawClient(e.sock).Post("http://casd/api/v0/"+c.path+"?arg="+info.Cid, "", nil)
						require.NoError(t, err)
						defer resp.Body.Close()
						require.Equal(t, http.StatusConflict, resp.StatusCode)
						var body map[string]string
						require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
						require.Equal(t, map[string]string{"message": msg, "kind": "busy"}, body)
					})
				}
			}
		})
	}
}

// TestAddFailsBeforeBody checks that an add whose backend fails before it
// reads the body leaves the connection usable for the client's next call.
// net/http's server used to panic on it (golang/go#68560), and the next
// call failed with "connection reset by peer" about one time in five.
func TestAddFailsBeforeBody(t *testing.T) {
	f := newStore()
	f.err = kindErr{core.KindBusy, "fake: repo locked"}
	e := serve(t, api.Backends{Files: f, Network: &fakeNetwork{}})
	for i := range 50 {
		_, err := e.c.Add(t.Context(), strings.NewReader("data"), core.AddOptions{})
		require.EqualError(t, err, "fake: repo locked")
		_, err = e.c.ID(t.Context())
		require.NoError(t, err, "call %d after a failed add", i)
	}
}

// nilRepo is a broken backend: its calls return neither a value nor an
// error.
type nilRepo struct{}

func (nilRepo) RepoVerify(context.Context) (*core.VerifyReport, error) { return nil, nil }
func (nilRepo) RepoGC(context.Context) (*core.GCResult, error)         { return nil, nil }
func (nilRepo) RepoStat(context.Context) (*core.RepoStat, error)       { return nil, nil }

// TestNoResult checks that a JSON call never yields a nil result without
// an error, whichever side is at fault.
func TestNoResult(t *testing.T) {
	t.Run("backend", func(t *testing.T) {
		e := serve(t, api.Backends{Repo: nilRepo{}})
		st, err := e.c.RepoStat(t.Context())
		require.Nil(t, st)
		require.EqualError(t, err, "api: /api/v0/repo/stat returned no result")
		require.Equal(t, core.KindOther, core.KindOf(err))
	})
	t.Run("server", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "api.sock")
		l, err := net.Listen("unix", sock)
		require.NoError(t, err)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "null\n")
		})}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
		c, err := api.Dial(t.Context(), sock)
		require.NoError(t, err)
		defer c.Close()

		st, err := c.RepoStat(t.Context())
		require.Nil(t, st)
		require.ErrorIs(t, err, api.ErrBadResponse)
		require.ErrorContains(t, err, "repo/stat: null result")
		files, err := c.Ls(t.Context())
		require.NoError(t, err, "a null list is an empty one")
		require.Empty(t, files)
	})
}

// TestNodeErrors sends node's own sentinels through.
func TestNodeErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind core.Kind
	}{
		{core.ErrOffline, core.KindBusy},
		{fmt.Errorf("connect foo: %w", core.ErrBadInput), core.KindBadInput},
		{fmt.Errorf("share bafk: %w", core.ErrNotOwned), core.KindIntegrity},
		{errors.New("disk on fire"), core.KindOther},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			e := serve(t, api.Backends{Network: &fakeNetwork{err: tc.err}})
			err := e.c.Connect(t.Context(), "/ip4/1.2.3.4/tcp/1")
			require.EqualError(t, err, tc.err.Error())
			require.Equal(t, tc.kind, core.KindOf(err))
		})
	}
}

// TestWire checks statuses and bodies as curl would see them.
func TestWire(t *testing.T) {
	t.Run("kinds", func(t *testing.T) {
		for _, k := range kinds {
			t.Run(string(k.kind), func(t *testing.T) {
				e := serve(t, api.Backends{Repo: &fakeRepo{faults{err: kindErr{k.kind, "boom"}}}})
				resp, err := rawClient(e.sock).Post("http://casd/api/v0/repo/gc", "", nil)
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, k.status, resp.StatusCode)
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				var body map[string]string
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
				require.Equal(t, map[string]string{"message": "boom", "kind": string(k.kind)}, body)
			})
		}
	})

	f := newStore()
	e := serveServer(t, api.NewServer(fakeNode{f, &fakeRepo{}, &fakeNetwork{}}))
	hc := rawClient(e.sock)
	for _, tc := range []struct {
		name, method, path string
		status             int
		message            string
	}{
		{"get", http.MethodGet, "/api/v0/id", 400, "api: method GET not allowed, use POST"},
		{"unknown endpoint", http.MethodPost, "/api/v0/frobnicate", 400, "api: unknown endpoint /api/v0/frobnicate"},
		{"missing arg", http.MethodPost, "/api/v0/cat", 400, "api: missing argument arg"},
		{"bad mode", http.MethodPost, "/api/v0/add?mode=rwx", 400, `api: bad mode "rwx"`},
		{"bad all", http.MethodPost, "/api/v0/peers?all=maybe", 400, `api: bad value of all: "maybe"`},
		{"not found", http.MethodPost, "/api/v0/block/get?arg=bafkx", 404, "block get bafkx: fake: not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, "http://casd"+tc.path, nil)
			require.NoError(t, err)
			resp, err := hc.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			var body api.Error
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, tc.message, body.Message)
		})
	}
}

func TestCatMidStreamError(t *testing.T) {
	data := randomBytes(3, 1<<20)
	for _, after := range []int{1, 4096, 700_000} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			f := newStore()
			info := f.put(data, core.FileInfo{Name: "film.mkv"})
			f.err, f.failAfter = kindErr{core.KindIntegrity, "chunk 3: authentication failed"}, after
			e := serve(t, api.Backends{Files: f})

			gotInfo, got, err := catAll(t.Context(), e.c, info.Cid)
			require.EqualError(t, err, "chunk 3: authentication failed")
			require.Equal(t, core.KindIntegrity, core.KindOf(err))
			require.Equal(t, info, gotInfo)
			require.Equal(t, data[:after], got)
		})
	}

	t.Run("trailer on the wire", func(t *testing.T) {
		f := newStore()
		info := f.put(data, core.FileInfo{Name: "x"})
		f.err, f.failAfter = kindErr{core.KindNotFound, "no peer has chunk 7 ✗"}, 100
		e := serve(t, api.Backends{Files: f})
		resp, err := rawClient(e.sock).Post("http://casd/api/v0/cat?arg="+info.Cid, "", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Len(t, b, 100)
		require.JSONEq(t, `{"kind":"not_found","message":"no peer has chunk 7 ✗"}`, resp.Trailer.Get(api.TrailerError))
	})
}

func TestNonASCIIName(t *testing.T) {
	for _, name := range []string{
		"Ünïcødé 文件 📚.pdf",
		"quote\"back\\slash\nnew line\ttab\x00nul.txt",
		"<script>&amp;",
		"مرحبا.txt",
	} {
		t.Run(name, func(t *testing.T) {
			e := serve(t, api.Backends{Files: newStore()})
			res, err := e.c.Add(t.Context(), strings.NewReader("content"), core.AddOptions{Name: name})
			require.NoError(t, err)
			require.Equal(t, name, res.Name)

			info, got, err := catAll(t.Context(), e.c, res.Cid)
			require.NoError(t, err)
			require.Equal(t, name, info.Name)
			require.Equal(t, "content", string(got))

			// The header itself is plain printable ASCII.
			resp, err := rawClient(e.sock).Post("http://casd/api/v0/cat?arg="+res.Cid, "", nil)
			require.NoError(t, err)
			defer resp.Body.Close()
			for _, b := range []byte(resp.Header.Get(api.HeaderFile)) {
				require.True(t, b >= 0x20 && b < 0x7f, "header byte %#x", b)
			}

			files, err := e.c.Ls(t.Context())
			require.NoError(t, err)
			require.Len(t, files, 1)
			require.Equal(t, name, files[0].Name)
		})
	}
}

func TestCatOpenError(t *testing.T) {
	f := newStore()
	info := f.put(randomBytes(4, 1<<20), core.FileInfo{Name: "x"})
	e := serve(t, api.Backends{Files: f})
	errStop := errors.New("stdout is a directory")
	err := e.c.Cat(t.Context(), info.Cid, func(core.FileInfo) (io.Writer, error) { return nil, errStop })
	require.Equal(t, errStop, err, "open's error as is")

	// The connection is usable afterwards.
	_, got, err := catAll(t.Context(), e.c, info.Cid)
	require.NoError(t, err)
	require.Len(t, got, 1<<20)
}

// failWriter fails after n bytes.
type failWriter struct {
	n   int
	err error
}

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, w.err
	}
	w.n -= len(p)
	return len(p), nil
}

func TestCatWriteError(t *testing.T) {
	f := newStore()
	info := f.put(randomBytes(5, 1<<20), core.FileInfo{Name: "x"})
	e := serve(t, api.Backends{Files: f})
	errPipe := errors.New("broken pipe")
	err := e.c.Cat(t.Context(), info.Cid, func(core.FileInfo) (io.Writer, error) {
		return &failWriter{n: 5000, err: errPipe}, nil
	})
	require.ErrorIs(t, err, errPipe)
	require.NotErrorAs(t, err, new(*api.Error))
}

func TestRefsCallbackError(t *testing.T) {
	f := newStore()
	info := f.put([]byte("x"), core.FileInfo{})
	e := serve(t, api.Backends{Files: f})
	errEnough := errors.New("enough")
	var got []string
	err := e.c.Refs(t.Context(), info.Cid, func(c string) error {
		got = append(got, c)
		if len(got) == 2 {
			return errEnough
		}
		return nil
	})
	require.Equal(t, errEnough, err, "fn's error as is")
	require.Equal(t, refsOf(info.Cid)[:2], got)
}

func TestSocketMode(t *testing.T) {
	e := serve(t, api.Backends{})
	fi, err := os.Stat(e.sock)
	require.NoError(t, err)
	require.Equal(t, fs.ModeSocket, fi.Mode().Type())
	if runtime.GOOS != "windows" { // no mode bits there; see ListenUnix
		require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	}
}

func TestListenUnix(t *testing.T) {
	t.Run("stale socket", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "api.sock")
		l, err := net.Listen("unix", sock)
		require.NoError(t, err)
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		require.NoError(t, l.Close()) // a daemon killed with -9 leaves this
		_, err = os.Stat(sock)
		require.NoError(t, err)

		_, err = api.Dial(t.Context(), sock)
		require.ErrorIs(t, err, api.ErrNoDaemon)

		l, err = api.ListenUnix(sock)
		require.NoError(t, err)
		require.NoError(t, l.Close())
		_, err = os.Stat(sock)
		require.ErrorIs(t, err, fs.ErrNotExist, "Close removes the socket")
	})
	t.Run("live daemon", func(t *testing.T) {
		e := serve(t, api.Backends{Network: &fakeNetwork{}})
		_, err := api.ListenUnix(e.sock)
		require.ErrorIs(t, err, api.ErrDaemonRunning)
		require.ErrorContains(t, err, "daemon already running")
		_, err = e.c.ID(t.Context())
		require.NoError(t, err, "the live daemon keeps its socket")
	})
	t.Run("not a socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "api.sock")
		require.NoError(t, os.WriteFile(path, []byte("precious"), 0o600))
		_, err := api.ListenUnix(path)
		require.ErrorContains(t, err, "not a socket")
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, "precious", string(b))
	})
	t.Run("no directory", func(t *testing.T) {
		_, err := api.ListenUnix(filepath.Join(t.TempDir(), "missing", "api.sock"))
		require.Error(t, err)
	})
}

func TestNoDaemon(t *testing.T) {
	t.Run("no socket", func(t *testing.T) {
		_, err := api.Dial(t.Context(), filepath.Join(t.TempDir(), "api.sock"))
		require.ErrorIs(t, err, api.ErrNoDaemon)
	})
	t.Run("daemon stopped", func(t *testing.T) {
		e := serve(t, api.Backends{Network: &fakeNetwork{}})
		_, err := e.c.ID(t.Context())
		require.NoError(t, err)
		require.NoError(t, e.stop(t, t.Context()))
		_, err = e.c.ID(t.Context())
		require.ErrorIs(t, err, api.ErrNoDaemon)
		_, err = api.Dial(t.Context(), e.sock)
		require.ErrorIs(t, err, api.ErrNoDaemon)
	})
}

// TestCancel checks that cancelling the client's context cancels the
// backend's, whatever state the call is in.
func TestCancel(t *testing.T) {
	data := randomBytes(6, 1<<20)
	for _, tc := range []struct {
		name      string
		failAfter int
		call      func(ctx context.Context, c *api.Client, cid string) error
	}{
		{name: "json", call: func(ctx context.Context, c *api.Client, _ string) error {
			_, err := c.RepoVerify(ctx)
			return err
		}},
		{name: "cat before body", call: func(ctx context.Context, c *api.Client, cid string) error {
			_, _, err := catAll(ctx, c, cid)
			return err
		}},
		{name: "cat mid-stream", failAfter: 500_000, call: func(ctx context.Context, c *api.Client, cid string) error {
			_, _, err := catAll(ctx, c, cid)
			return err
		}},
		{name: "block/get mid-stream", failAfter: 100, call: func(ctx context.Context, c *api.Client, cid string) error {
			return c.BlockGet(ctx, cid, io.Discard)
		}},
		{name: "refs mid-stream", failAfter: 1, call: func(ctx context.Context, c *api.Client, cid string) error {
			return c.Refs(ctx, cid, func(string) error { return nil })
		}},
		{name: "add before body", call: func(ctx context.Context, c *api.Client, _ string) error {
			pr, pw := io.Pipe()
			defer pw.Close() // the body never ends on its own
			_, err := c.Add(ctx, pr, core.AddOptions{})
			return err
		}},
		{name: "add after body", failAfter: 2 << 20, call: func(ctx context.Context, c *api.Client, _ string) error {
			_, err := c.Add(ctx, bytes.NewReader(data), core.AddOptions{})
			return err
		}},
		{name: "add mid-body", failAfter: 600_000, call: func(ctx context.Context, c *api.Client, _ string) error {
			pr, pw := io.Pipe()
			var wg sync.WaitGroup
			defer wg.Wait()
			defer pw.Close() // the body never ends on its own
			wg.Go(func() { _, _ = pw.Write(data) })
			_, err := c.Add(ctx, pr, core.AddOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHang()
			f := newStore()
			info := f.put(data, core.FileInfo{Name: "x"})
			f.faults = faults{failAfter: tc.failAfter, hang: h}
			e := serve(t, api.Backends{Files: f, Blocks: f, Repo: &fakeRepo{faults{hang: h}}})

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- tc.call(ctx, e.c, info.Cid) }()
			recv(t, h.started)
			cancel()
			require.ErrorIs(t, recv(t, errc), context.Canceled, "client")
			require.ErrorIs(t, recv(t, h.canceled), context.Canceled, "backend")
		})
	}
}

// countingReader produces n pseudo-random bytes and counts them; once half
// are out, it waits until gate is closed.
type countingReader struct {
	r        io.Reader
	produced atomic.Int64
	half     int64
	gate     <-chan struct{}
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.produced.Load() >= r.half {
		select {
		case <-r.gate:
		case <-time.After(20 * time.Second):
			return 0, errors.New("no progress came back before half the file was sent: the body is buffered")
		}
	}
	n, err := r.r.Read(p)
	r.produced.Add(int64(n))
	return n, err
}

// TestAddLarge streams 64 MiB: the daemon reports progress while the client
// is still sending, which it could not if anything buffered the body.
func TestAddLarge(t *testing.T) {
	const size = 64 << 20
	f := newStore()
	f.discard = true
	e := serve(t, api.Backends{Files: f})

	var seed [32]byte
	gate := make(chan struct{})
	src := &countingReader{r: io.LimitReader(rand.NewChaCha8(seed), size), half: size / 2, gate: gate}
	var progress []int64
	res, err := e.c.Add(t.Context(), src, core.AddOptions{Name: "big", Progress: func(n int64) {
		if len(progress) == 0 {
			close(gate)
		}
		progress = append(progress, n)
	}})
	require.NoError(t, err)

	want := sha256.New()
	_, err = io.Copy(want, io.LimitReader(rand.NewChaCha8(seed), size))
	require.NoError(t, err)
	f.mu.Lock()
	require.Equal(t, int64(size), f.added, "bytes the backend read")
	require.Equal(t, want.Sum(nil), f.addedSum)
	f.mu.Unlock()
	require.Equal(t, int64(size), res.Size)

	require.Greater(t, len(progress), 16, "progress lines")
	require.IsIncreasing(t, progress)
	require.LessOrEqual(t, progress[len(progress)-1], int64(size))
	t.Logf("%d progress lines", len(progress))
}

func TestShutdown(t *testing.T) {
	t.Run("grace period over", func(t *testing.T) {
		h := newHang()
		e := serve(t, api.Backends{Repo: &fakeRepo{faults{hang: h}}})
		errc := make(chan error, 1)
		go func() {
			_, err := e.c.RepoGC(context.Background())
			errc <- err
		}()
		recv(t, h.started)

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := e.stop(t, ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, recv(t, h.canceled), context.Canceled, "backend cancelled")
		require.Error(t, recv(t, errc), "client")
	})
	t.Run("idle", func(t *testing.T) {
		e := serve(t, api.Backends{Network: &fakeNetwork{}})
		_, err := e.c.ID(t.Context())
		require.NoError(t, err)
		require.NoError(t, e.stop(t, t.Context()))
		_, err = os.Stat(e.sock)
		require.ErrorIs(t, err, fs.ErrNotExist, "socket removed")
	})
}

// TestConcurrent runs many calls at once on one client.
func TestConcurrent(t *testing.T) {
	e := serve(t, api.Backends{Files: newStore()})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 16 {
		wg.Go(func() {
			data := randomBytes(uint64(i), 50_000+i)
			res, err := e.c.Add(t.Context(), bytes.NewReader(data), core.AddOptions{Name: fmt.Sprint(i)})
			if err != nil {
				errs <- err
				return
			}
			_, got, err := catAll(t.Context(), e.c, res.Cid)
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("file %d: bytes differ", i)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// brokenReader returns n bytes of zeros, then err.
type brokenReader struct {
	n   int
	err error
}

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func TestAddReadError(t *testing.T) {
	e := serve(t, api.Backends{Files: newStore()})
	errDisk := errors.New("input/output error")
	_, err := e.c.Add(t.Context(), &brokenReader{n: 500_000, err: errDisk}, core.AddOptions{})
	require.ErrorIs(t, err, errDisk)
	require.ErrorContains(t, err, "api: add: read input")

	// The client and the server carry on.
	res, err := e.c.Add(t.Context(), strings.NewReader("ok"), core.AddOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(2), res.Size)
}
