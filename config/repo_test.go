package config_test

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/config"
)

func initRepo(tb testing.TB, dir string, opts config.InitOptions) *config.Repo {
	tb.Helper()
	r, err := config.Init(dir, opts)
	noErr(tb, err, "init")
	return r
}

func openRepo(tb testing.TB, dir string) *config.Repo {
	tb.Helper()
	r, err := config.Open(dir)
	noErr(tb, err, "open")
	return r
}

// snapshot records every path under dir with its mode and contents.
func snapshot(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		m[rel] = v
		return nil
	})
	noErr(tb, err, "snapshot")
	return m
}

func mode(tb testing.TB, path string) fs.FileMode {
	tb.Helper()
	fi, err := os.Stat(path)
	noErr(tb, err)
	return fi.Mode().Perm()
}

func TestInitOpenRoundTrip(t *testing.T) {
	for _, profile := range append([]string{""}, config.Profiles...) {
		t.Run("profile="+profile, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			r := initRepo(t, dir, config.InitOptions{Profile: profile})

			equal(t, dir, r.Path)
			isTrue(t, r.Keys.Master != [32]byte{} && r.Keys.Convergence != [32]byte{}, "keys not generated")
			isTrue(t, r.Keys.Master != r.Keys.Convergence, "master and convergence keys are equal")
			isTrue(t, r.Identity.Type() == crypto.Ed25519, "identity type %s, want Ed25519", r.Identity.Type())
			id, err := peer.IDFromPrivateKey(r.Identity)
			noErr(t, err)
			equal(t, id, r.PeerID())
			equal(t, id.String(), r.Config.Identity.PeerID)
			want, err := config.DefaultConfig(profile)
			noErr(t, err)
			want.Identity.PeerID = id.String()
			equal(t, want, r.Config)

			b, err := os.ReadFile(filepath.Join(dir, "version"))
			noErr(t, err)
			equal(t, "1\n", string(b))
			identity, err := os.ReadFile(filepath.Join(dir, "keys", "identity"))
			noErr(t, err)
			marshaled, err := crypto.MarshalPrivateKey(r.Identity)
			noErr(t, err)
			isTrue(t, bytes.Equal(identity, marshaled), "keys/identity is not MarshalPrivateKey bytes")
			master, err := os.ReadFile(filepath.Join(dir, "keys", "master"))
			noErr(t, err)
			isTrue(t, bytes.Equal(master, r.Keys.Master[:]), "keys/master differs from Keys.Master")

			o := openRepo(t, dir)
			equal(t, r.Path, o.Path)
			equal(t, r.Config, o.Config)
			equal(t, r.Keys, o.Keys)
			isTrue(t, r.Identity.Equals(o.Identity), "identity differs after Open")
			equal(t, r.PeerID(), o.PeerID())

			equal(t, filepath.Join(dir, "blocks"), o.BlocksDir())
			equal(t, filepath.Join(dir, "datastore", "meta.db"), o.MetaPath())
			equal(t, filepath.Join(dir, "api.sock"), o.APISocketPath())
			equal(t, filepath.Join(dir, "config"), o.ConfigPath())
			equal(t, filepath.Join(dir, "repo.lock"), o.LockPath())
		})
	}
}

func TestInitDistinctRepos(t *testing.T) {
	a := initRepo(t, t.TempDir(), config.InitOptions{})
	b := initRepo(t, t.TempDir(), config.InitOptions{})
	isTrue(t, a.PeerID() != b.PeerID(), "two repos share a peer ID")
	isTrue(t, a.Keys != b.Keys, "two repos share keys")
}

func TestInitRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	r := initRepo(t, "rel", config.InitOptions{Profile: "local"})
	isTrue(t, filepath.IsAbs(r.Path), "Path %q is not absolute", r.Path)
	o := openRepo(t, "rel")
	equal(t, r.Path, o.Path)
}

func TestInitRefusesExistingRepo(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"full repo", func(t *testing.T, dir string) { initRepo(t, dir, config.InitOptions{}) }},
		{"config only", func(t *testing.T, dir string) {
			noErr(t, os.WriteFile(filepath.Join(dir, "config"), []byte("{}"), 0o600))
		}},
		{"version only", func(t *testing.T, dir string) {
			noErr(t, os.WriteFile(filepath.Join(dir, "version"), []byte("1\n"), 0o600))
		}},
		{"keys dir only", func(t *testing.T, dir string) {
			noErr(t, os.Mkdir(filepath.Join(dir, "keys"), 0o700))
			noErr(t, os.WriteFile(filepath.Join(dir, "keys", "master"), []byte("precious"), 0o600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			before := snapshot(t, dir)
			_, err := config.Init(dir, config.InitOptions{Profile: "server"})
			errIs(t, err, config.ErrRepoExists)
			equal(t, before, snapshot(t, dir), "Init changed an existing repo")
		})
	}
}

func TestInitKeepsOtherContents(t *testing.T) {
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	noErr(t, os.Mkdir(filepath.Join(dir, "blocks"), 0o755))
	before := snapshot(t, dir)

	// A failing Init (bad profile) leaves the dir as it was.
	_, err := config.Init(dir, config.InitOptions{Profile: "laptop"})
	errContains(t, err, "laptop")
	equal(t, before, snapshot(t, dir))

	// A successful one adds to it.
	initRepo(t, dir, config.InitOptions{})
	after := snapshot(t, dir)
	for k, v := range before {
		equal(t, v, after[k], k)
	}
	equal(t, fs.FileMode(0o755)|fs.ModeDir, mustStat(t, filepath.Join(dir, "blocks")).Mode(), "existing blocks dir")
}

func mustStat(tb testing.TB, path string) fs.FileInfo {
	tb.Helper()
	fi, err := os.Stat(path)
	noErr(tb, err)
	return fi
}

func TestInitFailureLeavesNoNewDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "x", "repo")
	_, err := config.Init(dir, config.InitOptions{Profile: "nope"})
	isTrue(t, err != nil, "Init with a bad profile succeeded")
	_, err = config.Init(dir, config.InitOptions{Keys: &config.Keys{}})
	errContains(t, err, "all zero")
	equal(t, map[string]string{".": mustStat(t, parent).Mode().String()}, snapshot(t, parent))
}

// TestInitBootstrap: Init writes the given bootstrap peers in place of the
// profile's, and refuses a bad one before it creates anything.
func TestInitBootstrap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	r := initRepo(t, dir, config.InitOptions{Profile: "local", Bootstrap: []string{testBootstrap}})
	equal(t, []string{testBootstrap}, r.Config.Bootstrap)
	equal(t, []string{testBootstrap}, openRepo(t, dir).Config.Bootstrap)

	for _, tt := range []struct{ addr, errContains string }{
		{"foo", "invalid multiaddr"},
		{"/ip4/192.0.2.1/tcp/4001", "/p2p/"},
		{"/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", "no address"},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			parent := t.TempDir()
			_, err := config.Init(filepath.Join(parent, "x", "repo"), config.InitOptions{Bootstrap: []string{testBootstrap, tt.addr}})
			errContains(t, err, "Bootstrap[1]", tt.errContains)
			equal(t, map[string]string{".": mustStat(t, parent).Mode().String()}, snapshot(t, parent))
		})
	}
}

func TestRestoreKeys(t *testing.T) {
	var keys config.Keys
	_, _ = rand.Read(keys.Master[:])
	_, _ = rand.Read(keys.Convergence[:])
	orig := keys

	dir := t.TempDir()
	r := initRepo(t, dir, config.InitOptions{Profile: "local", Keys: &keys})
	equal(t, orig, r.Keys)
	equal(t, orig, openRepo(t, dir).Keys)

	// A second restore of the same keys gets the same keys but its own identity.
	r2 := initRepo(t, t.TempDir(), config.InitOptions{Keys: &keys})
	equal(t, orig, r2.Keys)
	isTrue(t, r.PeerID() != r2.PeerID(), "restored repos share a peer ID")
	equal(t, orig, keys) // Init did not modify the caller's keys
}

func TestOpenMissing(t *testing.T) {
	tests := []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"no dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent") }},
		{"empty dir", func(t *testing.T) string { return t.TempDir() }},
		{"unrelated dir", func(t *testing.T) string {
			dir := t.TempDir()
			noErr(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o600))
			return dir
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Open(tt.dir(t))
			errIs(t, err, config.ErrNoRepo)
		})
	}
}

func TestOpenNewerVersion(t *testing.T) {
	dir := t.TempDir()
	initRepo(t, dir, config.InitOptions{})
	noErr(t, os.WriteFile(filepath.Join(dir, "version"), []byte("2\n"), 0o600))
	_, err := config.Open(dir)
	errIs(t, err, config.ErrNewerRepo)
	errContains(t, err, "version 2", "up to 1")
}

func TestOpenRejectsDamage(t *testing.T) {
	tests := []struct {
		name        string
		damage      func(t *testing.T, dir string)
		errContains string
	}{
		{"version garbage", writeAt("version", "one\n"), "invalid version"},
		{"version zero", writeAt("version", "0\n"), "invalid version"},
		{"version missing", removeAt("version"), "damaged"},
		{"config missing", removeAt("config"), "read config"},
		{"config unknown field", func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, "config"))
			noErr(t, err)
			b = bytes.Replace(b, []byte(`"Discovery": {`), []byte(`"Discovery": {"Bonjour": true,`), 1)
			noErr(t, os.WriteFile(filepath.Join(dir, "config"), b, 0o600))
		}, `unknown field "Bonjour"`},
		{"config invalid", func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, "config"))
			noErr(t, err)
			b = bytes.Replace(b, []byte(`"Factor": 3`), []byte(`"Factor": 30`), 1)
			noErr(t, os.WriteFile(filepath.Join(dir, "config"), b, 0o600))
		}, "Replication.Factor"},
		{"master short", writeAt("keys/master", strings.Repeat("k", 31)), "31 bytes, want 32"},
		{"convergence long", writeAt("keys/convergence", strings.Repeat("k", 33)), "33 bytes, want 32"},
		{"master missing", removeAt("keys/master"), "read key"},
		{"identity garbage", writeAt("keys/identity", "garbage"), "keys/identity"},
		{"identity swapped", func(t *testing.T, dir string) {
			k, _, err := crypto.GenerateEd25519Key(rand.Reader)
			noErr(t, err)
			b, err := crypto.MarshalPrivateKey(k)
			noErr(t, err)
			writeAt("keys/identity", string(b))(t, dir)
		}, "does not match"},
		{"identity not ed25519", func(t *testing.T, dir string) {
			k, _, err := crypto.GenerateECDSAKeyPair(rand.Reader)
			noErr(t, err)
			b, err := crypto.MarshalPrivateKey(k)
			noErr(t, err)
			writeAt("keys/identity", string(b))(t, dir)
		}, "want Ed25519"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			initRepo(t, dir, config.InitOptions{})
			tt.damage(t, dir)
			_, err := config.Open(dir)
			errContains(t, err, tt.errContains)
		})
	}
}

func writeAt(name, data string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		noErr(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600))
	}
}

func removeAt(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		noErr(t, os.Remove(filepath.Join(dir, name)))
	}
}

func TestLockContention(t *testing.T) {
	dir := t.TempDir()
	initRepo(t, dir, config.InitOptions{})
	a, b := openRepo(t, dir), openRepo(t, dir)

	releaseA, err := a.Lock()
	noErr(t, err, "first lock")
	if runtime.GOOS != "windows" { // no holder record there; see Repo.Lock
		pid, err := os.ReadFile(a.LockPath())
		noErr(t, err)
		equal(t, strconv.Itoa(os.Getpid())+"\n", string(pid))
		equal(t, fs.FileMode(0o600), mode(t, a.LockPath()))
	}

	_, err = b.Lock()
	errIs(t, err, config.ErrRepoLocked)
	errContains(t, err, holderName(os.Getpid())+" (this process)")
	// The same Repo cannot lock twice either.
	_, err = a.Lock()
	errIs(t, err, config.ErrRepoLocked)

	noErr(t, releaseA(), "release")
	noErr(t, releaseA(), "second release")

	releaseB, err := b.Lock()
	noErr(t, err, "lock after release")
	_, err = a.Lock()
	errIs(t, err, config.ErrRepoLocked)
	noErr(t, releaseB())
}

func TestSaveConfig(t *testing.T) {
	dir := t.TempDir()
	r := initRepo(t, dir, config.InitOptions{Profile: "local"})

	c, err := r.Config.Set("Replication.Factor", "5")
	noErr(t, err)
	noErr(t, r.SaveConfig(c))
	equal(t, 5, r.Config.Replication.Factor)
	equal(t, 5, openRepo(t, dir).Config.Replication.Factor)
	equal(t, fs.FileMode(0o600), mode(t, r.ConfigPath()))

	// r.Config is a copy: later changes to c do not reach it.
	c.Replication.Factor = 6
	equal(t, 5, r.Config.Replication.Factor)

	// An empty PeerID is filled in.
	c2, err := config.DefaultConfig("server")
	noErr(t, err)
	noErr(t, r.SaveConfig(c2))
	equal(t, r.PeerID().String(), r.Config.Identity.PeerID)
	equal(t, "", c2.Identity.PeerID)
	equal(t, r.Config, openRepo(t, dir).Config)

	before := snapshot(t, dir)
	tests := []struct {
		name        string
		mutate      func(c *config.Config)
		errContains string
	}{
		{"invalid", func(c *config.Config) { c.Chunker.Size = 1000 }, "Chunker.Size"},
		{"foreign peer ID", func(c *config.Config) {
			c.Identity.PeerID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
		}, "not this repo's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := r.Config.Clone()
			tt.mutate(bad)
			errContains(t, r.SaveConfig(bad), tt.errContains)
			equal(t, before, snapshot(t, dir), "refused save changed the repo")
		})
	}
}

// TestOpenOldRepo opens a repo whose config file an older casd init wrote,
// with the retired keys Addresses.API and Replication.RepairInterval and
// the Gossip keys of before their retirement: it opens, the next save
// leaves the retired keys out and keeps Gossip's values.
func TestOpenOldRepo(t *testing.T) {
	dir := t.TempDir()
	r := initRepo(t, dir, config.InitOptions{})
	old, err := os.ReadFile(filepath.Join("testdata", "config-retired-keys.json"))
	noErr(t, err)
	old = bytes.Replace(old, []byte("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"), []byte(r.PeerID().String()), 1)
	old = bytes.Replace(old, []byte(`"SampleSize": 16`), []byte(`"SampleSize": 9`), 1)
	noErr(t, os.WriteFile(r.ConfigPath(), old, 0o600))

	o := openRepo(t, dir)
	want := r.Config.Clone()
	want.Gossip.SampleSize = 9
	equal(t, want, o.Config)

	c, err := o.Config.Set("Replication.Factor", "4")
	noErr(t, err)
	noErr(t, o.SaveConfig(c))
	saved, err := os.ReadFile(o.ConfigPath())
	noErr(t, err)
	for _, key := range []string{`"API"`, `"RepairInterval"`} {
		isTrue(t, !bytes.Contains(saved, []byte(key)), "saved config still holds %s:\n%s", key, saved)
	}
	again := openRepo(t, dir).Config
	equal(t, 4, again.Replication.Factor)
	equal(t, 9, again.Gossip.SampleSize)
}

func TestResolvePath(t *testing.T) {
	home := t.TempDir()
	cwd := t.TempDir()
	t.Setenv("HOME", home)
	t.Chdir(cwd)
	tests := []struct {
		name, flag, env, want string
	}{
		{"default", "", "", filepath.Join(home, ".casd")},
		{"env", "", "/srv/casd", "/srv/casd"},
		{"flag beats env", "/data/casd", "/srv/casd", "/data/casd"},
		{"relative flag", "repo", "", filepath.Join(cwd, "repo")},
		{"relative env", "", "./r", filepath.Join(cwd, "r")},
		{"tilde", "~/x", "", filepath.Join(home, "x")},
		{"tilde env", "", "~/y", filepath.Join(home, "y")},
		{"bare tilde", "~", "", home},
		{"tilde user untouched", "~bob/x", "", filepath.Join(cwd, "~bob", "x")},
		{"cleaned", "/a/b/../c/", "", "/a/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CASD_PATH", tt.env)
			got, err := config.ResolvePath(tt.flag)
			noErr(t, err)
			equal(t, tt.want, got)
		})
	}
}
