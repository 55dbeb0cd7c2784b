package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestBootstrapCommands checks `casd init --bootstrap` and `casd bootstrap
// list|add|rm`: what they write is what `config show` and `bootstrap list`
// print, a duplicate add is a no-op, and a bad address (not a multiaddr,
// no /p2p/, nothing to dial, this node's own ID, or an rm of one not in the
// list) is exit code 2 with one stderr line naming it and nothing written.
func TestBootstrapCommands(t *testing.T) {
	t.Parallel()
	a, b, c := bootAddr(t, "10.0.0.1"), bootAddr(t, "10.0.0.2"), bootAddr(t, "10.0.0.3")

	n := newEmptyNode(t)
	res := n.run(t, "init", "--profile=local", "--bootstrap", a, "--bootstrap", b)
	n.requireOK(t, res)
	n.id = parseInit(t, n, res)
	requireBootstrap(t, n, a, b)

	t.Run("add duplicate is a no-op", func(t *testing.T) {
		before := configBytes(t, n)
		bootstrapOK(t, n, "add", a)
		requireBootstrap(t, n, a, b)
		check(t, string(configBytes(t, n)) == string(before), "bootstrap add of a listed address changed the config file")
	})
	t.Run("add", func(t *testing.T) {
		bootstrapOK(t, n, "add", c, b)
		requireBootstrap(t, n, a, b, c)
	})
	t.Run("rm", func(t *testing.T) {
		bootstrapOK(t, n, "rm", b)
		requireBootstrap(t, n, a, c)
	})
	bad := []struct{ name, cmd, addr, why string }{
		{"rm not listed", "rm", b, "not in the bootstrap list"},
		{"add not a multiaddr", "add", "not-a-multiaddr", ""},
		{"add without p2p", "add", "/ip4/10.0.0.4/tcp/4001", "/p2p/"},
		{"add nothing to dial", "add", "/p2p/" + randomPeerID(t), "no address to dial"},
		{"add own id", "add", "/ip4/10.0.0.5/tcp/4001/p2p/" + n.id, "own peer ID"},
		{"rm not a multiaddr", "rm", "/ip4/not-an-ip/tcp/1/p2p/" + randomPeerID(t), ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			requireBadBootstrap(t, n, tt.addr, tt.why, "bootstrap", tt.cmd, tt.addr)
			// A good address before the bad one is not written (or
			// removed) either.
			good := bootAddr(t, "10.0.0.6")
			if tt.cmd == "rm" {
				good = a
			}
			requireBadBootstrap(t, n, tt.addr, tt.why, "bootstrap", tt.cmd, good, tt.addr)
			requireBootstrap(t, n, a, c)
		})
	}
	t.Run("rm all", func(t *testing.T) {
		bootstrapOK(t, n, "rm", "--all")
		requireBootstrap(t, n)
		bootstrapOK(t, n, "rm", "--all")
		requireBootstrap(t, n)
	})
	t.Run("init with a bad address", func(t *testing.T) {
		for _, bad := range []string{"not-a-multiaddr", "/ip4/10.0.0.7/tcp/4001", "/p2p/" + randomPeerID(t)} {
			m := newEmptyNode(t)
			res := m.run(t, "init", "--profile=local", "--bootstrap", a, "--bootstrap", bad)
			line := requireFail(t, res, exitUsage)
			check(t, strings.Contains(line, bad), "init's error %q must name the bad address %q", line, bad)
			_, err := os.Lstat(m.repo)
			check(t, os.IsNotExist(err), "init with bad bootstrap %q left %s behind (lstat: %v)", bad, m.repo, err)
		}
	})
}

// bootAddr returns a bootstrap multiaddr at ip with a fresh peer ID.
func bootAddr(t testing.TB, ip string) string {
	t.Helper()
	return fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", ip, randomPeerID(t))
}

// randomPeerID returns the peer ID of a fresh Ed25519 key.
func randomPeerID(t testing.TB) string {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	noErr(t, err, "generate key")
	id, err := peer.IDFromPublicKey(pub)
	noErr(t, err, "peer id")
	return id.String()
}

// bootstrapOK runs `casd bootstrap args...`, requiring success and no output.
func bootstrapOK(t testing.TB, n *node, args ...string) {
	t.Helper()
	res := n.run(t, append([]string{"bootstrap"}, args...)...)
	n.requireOK(t, res)
	check(t, res.out() == "" && res.stderr == "", "bootstrap %s must print nothing: %s", args[0], res)
}

// requireBadBootstrap runs args, which must fail as bad input (exit 2)
// with one stderr line naming addr (and saying why, when why is set),
// nothing on stdout, and no file of the repo changed.
func requireBadBootstrap(t testing.TB, n *node, addr, why string, args ...string) {
	t.Helper()
	before := snapshot(t, n.repo)
	res := n.run(t, args...)
	line := requireFail(t, res, exitUsage)
	check(t, len(res.stdout) == 0, "a refused %s printed on stdout: %s", args[1], res)
	check(t, strings.Contains(line, addr), "error %q must name the address %q", line, addr)
	check(t, why == "" || strings.Contains(line, why), "error %q must say why (%q)", line, why)
	requireUnchanged(t, before, n.repo)
}

// requireBootstrap checks that `casd bootstrap list` prints want, one per
// line, and that `casd config show` holds the same Bootstrap.
func requireBootstrap(t testing.TB, n *node, want ...string) {
	t.Helper()
	res := n.run(t, "bootstrap", "list")
	n.requireOK(t, res)
	wantOut := ""
	for _, a := range want {
		wantOut += a + "\n"
	}
	check(t, res.out() == wantOut, "bootstrap list printed %q, want %q", res.out(), wantOut)

	res = n.run(t, "config", "show")
	n.requireOK(t, res)
	var show struct{ Bootstrap []string }
	noErr(t, json.Unmarshal(res.stdout, &show), "decode config show: "+res.out())
	check(t, show.Bootstrap != nil, "config show: Bootstrap is null, want a list: %s", res)
	check(t, slices.Equal(show.Bootstrap, want), "config show: Bootstrap %q, want %q", show.Bootstrap, want)
}

// configBytes returns the bytes of n's config file.
func configBytes(t testing.TB, n *node) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(n.repo, "config"))
	noErr(t, err, "read config")
	return data
}

// TestBootstrapPeersDialled checks that the daemon dials what the CLI
// wrote: a node made with `casd init --bootstrap` and one given a peer by
// `casd bootstrap add` each connect to that peer when their daemon starts,
// and list it with source "bootstrap".
func TestBootstrapPeersDialled(t *testing.T) {
	boot := startDaemon(t, newNode(t))
	addr := boot.tcpAddr(t)

	byInit := newEmptyNode(t)
	res := byInit.run(t, "init", "--profile=local", "--bootstrap", addr)
	byInit.requireOK(t, res)
	byInit.id = parseInit(t, byInit, res)

	byAdd := newNode(t)
	bootstrapOK(t, byAdd, "add", addr)

	for _, n := range []*node{byInit, byAdd} {
		startDaemon(t, n)
	}
	for _, n := range []*node{byInit, byAdd} {
		waitFor(t, daemonStartTimeout, func() (bool, string) {
			ps := allPeers(t, n)
			i := slices.IndexFunc(ps, func(p peerJSON) bool { return p.ID == boot.ID })
			if i < 0 {
				return false, fmt.Sprintf("%s does not know its bootstrap peer %s: %+v", n.repo, boot.ID, ps)
			}
			return ps[i].Connected && ps[i].hasSource("bootstrap"),
				fmt.Sprintf("%s lists its bootstrap peer as %+v, want connected with source bootstrap", n.repo, ps[i])
		})
	}
}
