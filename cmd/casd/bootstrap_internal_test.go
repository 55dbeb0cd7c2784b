package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Bootstrap addresses of fixed test peer IDs.
const (
	bootA = "/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	bootB = "/ip4/192.0.2.2/udp/4001/quic-v1/p2p/12D3KooWQA9CjT5DVkRSVy6WCfUTQUCUPU4KkSuhk9MjHs6C3Toj"
	// bootAOld is bootA written with the old /ipfs/ name of /p2p/.
	bootAOld = "/ip4/192.0.2.1/tcp/4001/ipfs/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
)

// badBootstrap lists addresses every bootstrap command refuses, with why:
// the error must quote the address, then say why. "self" stands for the
// repo's own peer ID.
var badBootstrap = []struct{ name, addr, why string }{
	{"not a multiaddr", "foo", "invalid multiaddr"},
	{"no p2p", "/ip4/192.0.2.1/tcp/4001", "must end in /p2p/<peer id>"},
	{"nothing to dial", "/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", "has no address to dial"},
	{"bad peer id", "/ip4/192.0.2.1/tcp/4001/p2p/0OIl", "invalid multiaddr"},
	{"own id", "/ip4/192.0.2.9/tcp/4001/p2p/self", "is this node's own peer ID"},
}

// initRepoCLI makes a local-profile repo with casd init and extra args.
func initRepoCLI(t *testing.T, args ...string) (repo, self string) {
	t.Helper()
	repo = filepath.Join(t.TempDir(), "repo")
	r := runCLI(t, append([]string{"--repo", repo, "init", "--profile", "local"}, args...)...)
	require.Equal(t, 0, r.code, r.stderr)
	_, self, ok := strings.Cut(r.stdout, "peer identity: ")
	require.True(t, ok, r.stdout)
	return repo, strings.TrimSpace(self)
}

func readConfig(t *testing.T, repo string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "config"))
	require.NoError(t, err)
	return string(b)
}

func bootstrapList(t *testing.T, repo string) string {
	t.Helper()
	r := runCLI(t, "--repo", repo, "bootstrap", "list")
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stderr)
	return r.stdout
}

func TestInitBootstrapFlag(t *testing.T) {
	repo, _ := initRepoCLI(t, "--bootstrap", bootAOld, "--bootstrap", bootB, "--bootstrap", bootA)
	require.Equal(t, bootA+"\n"+bootB+"\n", bootstrapList(t, repo), "canonical, in order, without the duplicate")

	for _, tt := range badBootstrap {
		if tt.addr == "/ip4/192.0.2.9/tcp/4001/p2p/self" {
			continue // no own ID before init makes one
		}
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			repo := filepath.Join(parent, "x", "repo")
			r := runCLI(t, "--repo", repo, "init", "--bootstrap", bootA, "--bootstrap", tt.addr)
			requireError(t, r, exitBadInput, fmt.Sprintf("init --bootstrap: %q: %s", tt.addr, tt.why))
			require.Empty(t, r.stdout)
			entries, err := os.ReadDir(parent)
			require.NoError(t, err)
			require.Empty(t, entries, "a refused init leaves nothing behind")
		})
	}
}

func TestBootstrapCommands(t *testing.T) {
	repo, self := initRepoCLI(t)
	require.Empty(t, bootstrapList(t, repo))
	cli := func(args ...string) result {
		return runCLI(t, append([]string{"--repo", repo, "bootstrap"}, args...)...)
	}
	ok := func(args ...string) {
		t.Helper()
		require.Equal(t, result{0, "", ""}, cli(args...))
	}

	ok("add", bootA)
	ok("add", bootB, bootAOld) // bootAOld is bootA: a no-op
	require.Equal(t, bootA+"\n"+bootB+"\n", bootstrapList(t, repo))
	ok("rm", bootAOld)
	require.Equal(t, bootB+"\n", bootstrapList(t, repo))
	ok("add", bootA)
	require.Equal(t, bootB+"\n"+bootA+"\n", bootstrapList(t, repo))

	before := readConfig(t, repo)
	for _, tt := range badBootstrap {
		addr := strings.Replace(tt.addr, "/p2p/self", "/p2p/"+self, 1)
		for _, op := range []string{"add", "rm"} {
			t.Run(op+" "+tt.name, func(t *testing.T) {
				r := cli(op, bootA, addr)
				requireError(t, r, exitBadInput, fmt.Sprintf("bootstrap %s: %q: %s", op, addr, tt.why))
				require.Equal(t, before, readConfig(t, repo), "nothing written")
			})
		}
	}
	t.Run("rm of one not in the list", func(t *testing.T) {
		other := strings.Replace(bootB, "192.0.2.2", "192.0.2.3", 1)
		requireError(t, cli("rm", bootA, other), exitBadInput, `bootstrap rm: "`+other+`": not in the bootstrap list`)
		require.Equal(t, before, readConfig(t, repo), "nothing written")
	})
	for _, args := range [][]string{{"rm"}, {"rm", "--all", bootA}, {"add"}, {"list", bootA}, {}} {
		t.Run("usage "+strings.Join(args, " "), func(t *testing.T) {
			requireError(t, cli(args...), exitBadInput, "casd bootstrap")
			require.Equal(t, before, readConfig(t, repo), "nothing written")
		})
	}

	ok("rm", "--all")
	require.Empty(t, bootstrapList(t, repo))
	require.Contains(t, readConfig(t, repo), `"Bootstrap": []`)
}
