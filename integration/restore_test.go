package integration

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestLostLaptop: the owner's machine is gone; a new node restored from
// the exported key file opens the owner's file from its bare CID, fetching
// it from the replicas.
func TestLostLaptop(t *testing.T) {
	c := startCluster(t, 5)
	const owner = 1
	data := randBytes(3*mib + 99)
	root := c.nodes[owner].add(t, writeFile(t, t.TempDir(), "thesis.pdf", data))
	c.replicasOf(t, owner, root, replicationGoal)
	keyFile := filepath.Join(t.TempDir(), "casd.key")
	c.nodes[owner].requireOK(t, c.nodes[owner].runPass(t, testPassphrase, "key", "export", "-o", keyFile))
	c.daemons[owner].Kill(t)

	laptop := newEmptyNode(t)
	laptop.requireOK(t, laptop.runPass(t, testPassphrase, "init", "--profile=local", "--restore", keyFile))
	boot, err := json.Marshal([]string{c.daemons[0].tcpAddr(t)})
	noErr(t, err)
	laptop.requireOK(t, laptop.run(t, "config", "Bootstrap", string(boot)))
	startDaemon(t, laptop)

	got := laptop.cat(t, root) // the bare CID: the restored master key opens it
	check(t, sha256.Sum256(got) == sha256.Sum256(data), "restored node read %d bytes, want the %d bytes added", len(got), len(data))
	// get, through the daemon's API, writes the file under its original name.
	out := t.TempDir()
	laptop.requireOK(t, laptop.runDir(t, out, "get", root))
	saved, err := os.ReadFile(filepath.Join(out, "thesis.pdf"))
	noErr(t, err, "get wrote no thesis.pdf")
	check(t, sha256.Sum256(saved) == sha256.Sum256(data), "get wrote different bytes")

	res := laptop.run(t, "share", root)
	laptop.requireOK(t, res)
	check(t, len(res.stdout) > 0, "share on the restored node printed nothing")
}
