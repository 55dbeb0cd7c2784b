package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/core"
)

// result is what one run of the CLI printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs casd with args in-process.
func runCLI(t testing.TB, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// requireError checks that r failed with code and one "Error: " line
// containing want.
func requireError(t testing.TB, r result, code int, want string) {
	t.Helper()
	require.Equal(t, code, r.code, "stderr: %s", r.stderr)
	require.True(t, strings.HasPrefix(r.stderr, "Error: "), "stderr: %q", r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line on stderr: %q", r.stderr)
	require.Contains(t, r.stderr, want)
}

func TestUsageErrors(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"ls", "--bogus"}, "unknown flag: --bogus"},
		{"unknown global flag", []string{"--bogus", "ls"}, "unknown flag: --bogus"},
		{"missing arg", []string{"cat"}, "accepts 1 arg(s), received 0"},
		{"extra arg", []string{"ls", "x"}, `unknown command "x"`},
		{"too many args", []string{"config", "a", "b", "c"}, "accepts between 1 and 2 arg(s)"},
		{"group without subcommand", []string{"repo"}, "missing subcommand"},
		{"unknown subcommand", []string{"block", "put"}, `unknown command "put"`},
		{"bad progress value", []string{"add", "--progress", "maybe", "f"}, `"maybe" is not one of auto, true, false`},
		{"flag missing value", []string{"get", "x", "-o"}, "flag needs an argument"},
		{"unknown profile", []string{"--repo", repo, "init", "--profile", "cloud"}, `unknown profile "cloud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			requireError(t, r, exitBadInput, tt.want)
			require.Empty(t, r.stdout)
		})
	}
	require.NoDirExists(t, repo, "a usage error changes nothing")
}

func TestProgressFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    progressMode
		wantErr bool
	}{
		{"auto", progressAuto, false},
		{"true", progressTrue, false},
		{"false", progressFalse, false},
		{"yes", "", true},
		{"", "", true},
		{"TRUE", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m := progressAuto
			err := m.Set(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				require.Equal(t, progressAuto, m, "a bad value changes nothing")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, m)
		})
	}
	// A buffer is not a terminal: auto draws nothing, true draws anyway.
	require.False(t, progressAuto.enabled(&bytes.Buffer{}))
	require.True(t, progressTrue.enabled(&bytes.Buffer{}))
	require.False(t, progressFalse.enabled(os.Stderr))
}

func TestFlagsParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, g *globalOpts, cmdPath string)
	}{
		{"repo before command", []string{"--repo", "/r", "ls"}, func(t *testing.T, g *globalOpts, p string) {
			require.Equal(t, "/r", g.repo)
			require.Equal(t, "casd ls", p)
		}},
		{"repo after command", []string{"repo", "stat", "--repo=/r", "--json"}, func(t *testing.T, g *globalOpts, p string) {
			require.Equal(t, "/r", g.repo)
			require.Equal(t, "casd repo stat", p)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &globalOpts{}
			root := newRootCmd(g)
			cmd, flags, err := root.Find(tt.args)
			require.NoError(t, err)
			require.NoError(t, cmd.ParseFlags(flags))
			tt.check(t, g, cmd.CommandPath())
		})
	}

	t.Run("add flags", func(t *testing.T) {
		root := newRootCmd(&globalOpts{})
		cmd, flags, err := root.Find([]string{"add", "-q", "--progress=false", "f"})
		require.NoError(t, err)
		require.NoError(t, cmd.ParseFlags(flags))
		q, err := cmd.Flags().GetBool("quiet")
		require.NoError(t, err)
		require.True(t, q)
		require.Equal(t, "false", cmd.Flags().Lookup("progress").Value.String())
		require.Equal(t, []string{"f"}, cmd.Flags().Args())
	})
	t.Run("get flags", func(t *testing.T) {
		root := newRootCmd(&globalOpts{})
		cmd, flags, err := root.Find([]string{"get", "casd1x", "-o", "out", "--force"})
		require.NoError(t, err)
		require.NoError(t, cmd.ParseFlags(flags))
		require.Equal(t, "out", cmd.Flags().Lookup("output").Value.String())
		require.Equal(t, "true", cmd.Flags().Lookup("force").Value.String())
	})
}

func TestHelpAndVersion(t *testing.T) {
	r := runCLI(t, "--help")
	require.Equal(t, 0, r.code)
	for _, want := range []string{"Exit codes:", "2  usage or bad input", "3  not found", "4  integrity", "5  repo busy"} {
		require.Contains(t, r.stdout, want)
	}
	require.Empty(t, r.stderr)

	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runCLI(t, args...)
		require.Equal(t, result{0, "casd version " + version + "\n", ""}, r)
	}
}

func TestNoRepo(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "none")
	for _, args := range [][]string{{"ls"}, {"config", "show"}, {"key", "export"}, {"repo", "verify"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, append([]string{"--repo", repo}, args...)...)
			requireError(t, r, exitBusy, "no casd repo")
		})
	}
}

func TestInitAndConfig(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	r := runCLI(t, "--repo", repo, "init", "--profile", "local")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "initialized casd repo at "+repo+"\n")
	require.Regexp(t, `(?m)^peer identity: 12D3KooW\w+$`, r.stdout)

	cfgPath := filepath.Join(repo, "config")
	before, err := os.ReadFile(cfgPath)
	require.NoError(t, err)

	r = runCLI(t, "--repo", repo, "init")
	requireError(t, r, exitOther, "repo already exists")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string // stdout on success, part of stderr on failure
	}{
		{"get", []string{"config", "Replication.Factor"}, 0, "3\n"},
		{"get string", []string{"config", "Swarm.ConnMgr.GracePeriod"}, 0, "\"20s\"\n"},
		{"unknown key", []string{"config", "Replication.Nope"}, exitBadInput, "unknown key"},
		{"set unknown key", []string{"config", "Nope", "1"}, exitBadInput, "unknown key"},
		{"wrong type", []string{"config", "Replication.Factor", `"three"`}, exitBadInput, "Replication.Factor"},
		{"not JSON", []string{"config", "Replication.Factor", "three"}, exitBadInput, "not JSON"},
		{"out of range", []string{"config", "Replication.Factor", "99"}, exitBadInput, "out of range"},
		{"bad multiaddr", []string{"config", "Bootstrap", `["foo"]`}, exitBadInput, "invalid multiaddr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"--repo", repo}, tt.args...)...)
			if tt.wantCode == 0 {
				require.Equal(t, result{0, tt.want, ""}, r)
				return
			}
			requireError(t, r, tt.wantCode, tt.want)
			after, err := os.ReadFile(cfgPath)
			require.NoError(t, err)
			require.Equal(t, before, after, "nothing written on error")
		})
	}

	r = runCLI(t, "--repo", repo, "config", "Replication.Factor", "5")
	require.Equal(t, result{0, "", ""}, r)
	r = runCLI(t, "--repo", repo, "config", "Replication.Factor")
	require.Equal(t, "5\n", r.stdout)
	r = runCLI(t, "--repo", repo, "config", "show")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, `"Factor": 5`)
}

func TestKeyExportRestore(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	require.Equal(t, 0, runCLI(t, "--repo", repo, "init", "--profile", "local").code)
	keyFile := filepath.Join(dir, "owner.key")

	t.Setenv(envPassphrase, "correct horse")
	r := runCLI(t, "--repo", repo, "key", "export", "-o", keyFile)
	require.Equal(t, result{0, "", ""}, r)
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	first, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(first, []byte("-----BEGIN ")), "armored: %q", first)

	r = runCLI(t, "--repo", repo, "key", "export", "-o", keyFile)
	requireError(t, r, exitOther, "exists")
	again, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.Equal(t, first, again, "an existing key file is never overwritten")

	restored := filepath.Join(dir, "restored")
	t.Setenv(envPassphrase, "wrong")
	r = runCLI(t, "--repo", restored, "init", "--restore", keyFile)
	requireError(t, r, exitIntegrity, "wrong passphrase or corrupt key file")
	require.NoDirExists(t, restored)

	t.Setenv(envPassphrase, "correct horse")
	r = runCLI(t, "--repo", restored, "init", "--restore", filepath.Join(dir, "missing.key"))
	requireError(t, r, exitBadInput, "no such file or directory")

	r = runCLI(t, "--repo", restored, "init", "--profile", "local", "--restore", keyFile)
	require.Equal(t, 0, r.code, r.stderr)
	orig, err := os.ReadFile(filepath.Join(repo, "keys", "master"))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(restored, "keys", "master"))
	require.NoError(t, err)
	require.Equal(t, orig, got)

	t.Setenv(envPassphrase, "")
	r = runCLI(t, "--repo", repo, "key", "export")
	requireError(t, r, exitBadInput, "CASD_PASSPHRASE is empty")
}

// TestOffline runs the file commands against an offline node, end to end
// through the command line, on a small file.
func TestOffline(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	require.Equal(t, 0, runCLI(t, "--repo", repo, "init", "--profile", "local").code)
	src := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(src, []byte("hello, casd\n"), 0o640))
	casd := func(args ...string) result { return runCLI(t, append([]string{"--repo", repo}, args...)...) }

	r := casd("add", src)
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `^added \w+ notes\.txt\n$`, r.stdout)
	cid := strings.Fields(r.stdout)[1]
	require.Equal(t, result{0, cid + "\n", ""}, casd("add", "-q", src))

	require.Equal(t, result{0, "hello, casd\n", ""}, casd("cat", cid))

	out := filepath.Join(dir, "out")
	require.NoError(t, os.Mkdir(out, 0o755))
	r = casd("get", cid, "-o", out)
	require.Equal(t, result{0, "saved " + filepath.Join(out, "notes.txt") + "\n", ""}, r)
	requireError(t, casd("get", cid, "-o", out), exitOther, "exists; use --force")

	r = casd("share", cid)
	require.Regexp(t, `^casd1[A-Za-z0-9]+\n$`, r.stdout)
	capability := strings.TrimSpace(r.stdout)
	require.Equal(t, result{0, "hello, casd\n", ""}, casd("cat", capability))

	r = casd("refs", cid)
	require.Equal(t, 0, r.code, r.stderr)
	refs := strings.Fields(r.stdout)
	require.Equal(t, cid, refs[0], "root first")
	if len(refs) > 1 {
		requireError(t, casd("cat", refs[1]), exitIntegrity, "")
	}

	r = casd("ls")
	require.Regexp(t, `^`+cid+`\t12\t\S+\tnotes\.txt\n$`, r.stdout)
	r = casd("repo", "verify")
	require.Equal(t, result{0, "verified " + strconv.Itoa(len(refs)) + " blocks\n", ""}, r)

	requireError(t, casd("add", filepath.Join(dir, "nope")), exitBadInput, "no such file or directory")
	requireError(t, casd("add", dir), exitBadInput, "add "+dir+": is a directory; adding directories is not supported yet")
	requireError(t, casd("cat", "not-a-cid"), exitBadInput, "not-a-cid")
	requireError(t, casd("connect", "/ip4/127.0.0.1/tcp/1"), exitBusy, "daemon")
}

func TestRunRepoVerifyReportsBadBlocks(t *testing.T) {
	b := fakeRepo{verify: &core.VerifyReport{
		Checked: 9,
		Corrupt: []string{"bafkc"},
		Missing: []string{"bafkm1", "bafkm2"},
	}}
	var out bytes.Buffer
	err := runRepoVerify(context.Background(), b, &out)
	require.Equal(t, exitIntegrity, exitCode(err))
	require.EqualError(t, err, "repo verify: 1 corrupt, 2 missing blocks")
	require.Equal(t, "corrupt bafkc\nmissing bafkm1\nmissing bafkm2\n", out.String())
}

func TestRunAdd(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.bin")
	require.NoError(t, os.WriteFile(src, []byte("abc"), 0o600))
	fifo := nonRegularFile(t, dir)

	tests := []struct {
		name     string
		opts     addOpts
		path     string
		wantCode int
		want     string
	}{
		{"added", addOpts{progress: progressFalse}, src, 0, "added bafkadded a.bin\n"},
		{"quiet", addOpts{quiet: true, progress: progressFalse}, src, 0, "bafkadded\n"},
		{"progress on a pipe", addOpts{progress: progressTrue}, src, 0, "added bafkadded a.bin\n"},
		{"missing", addOpts{}, filepath.Join(dir, "nope"), exitBadInput, "open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"directory", addOpts{}, dir, exitBadInput, "add " + dir + ": is a directory; adding directories is not supported yet"},
		{"not regular", addOpts{}, fifo, exitBadInput, "add " + fifo + ": not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeFiles{}
			var stdout, stderr bytes.Buffer
			err := runAdd(t.Context(), b, tt.opts, tt.path, &stdout, &stderr)
			require.Equal(t, tt.wantCode, exitCode(err), "err: %v", err)
			if tt.wantCode != 0 {
				require.EqualError(t, err, tt.want)
				require.Empty(t, b.added)
				return
			}
			require.Equal(t, tt.want, stdout.String())
			require.Len(t, b.added, 1)
			require.Equal(t, "a.bin", b.added[0].Name)
			require.Equal(t, uint32(0o600), b.added[0].Mode)
			if tt.opts.progress == progressTrue {
				require.Contains(t, stderr.String(), "100%")
			} else {
				require.Empty(t, stderr.String())
			}
		})
	}
}
