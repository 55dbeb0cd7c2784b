package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestBadInput feeds each command wrong input: it must exit with the spec's
// code and one "Error: " line, write nothing to stdout, leave the repo as it
// was and create no output file.
func TestBadInput(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	srcDir := t.TempDir()
	data := randBytes(3*mib + 11)
	c := n.add(t, writeFile(t, srcDir, "known.bin", data))
	refs := n.refs(t, c)
	check(t, len(refs) >= 2, "a 3 MiB file has at least a root and a chunk, refs: %q", refs)
	chunk := refs[len(refs)-1]
	capa := n.share(t, c)
	unknown := randomCID(t)
	missing := filepath.Join(srcDir, "does-not-exist.bin")
	badCap := corruptToken(capa)

	tests := []struct {
		name    string
		args    []string
		code    int
		mention []string // the message names at least one of these (case-insensitive)
	}{
		{"add missing file", []string{"add", missing}, exitUsage, []string{"does-not-exist.bin", "no such file"}},
		{"add directory", []string{"add", srcDir}, exitUsage, []string{"director"}},
		{"add no argument", []string{"add"}, exitUsage, nil},
		{"add two files", []string{"add", missing, missing}, exitUsage, nil},
		{"unknown command", []string{"frobnicate"}, exitUsage, nil},
		{"cat not a CID", []string{"cat", "hello"}, exitUsage, []string{"hello", "cid", "capability"}},
		{"get not a CID", []string{"get", "hello"}, exitUsage, []string{"hello", "cid", "capability"}},
		{"refs not a CID", []string{"refs", "hello"}, exitUsage, []string{"hello", "cid", "capability"}},
		{"share not a CID", []string{"share", "hello"}, exitUsage, []string{"hello", "cid"}},
		{"block get not a CID", []string{"block", "get", "hello"}, exitUsage, []string{"hello", "cid"}},
		{"block stat not a CID", []string{"block", "stat", "hello"}, exitUsage, []string{"hello", "cid"}},
		{"cat unknown CID", []string{"cat", unknown}, exitNotFound, []string{"not found", unknown}},
		{"get unknown CID", []string{"get", unknown}, exitNotFound, []string{"not found", unknown}},
		{"refs unknown CID", []string{"refs", unknown}, exitNotFound, []string{"not found", unknown}},
		{"share unknown CID", []string{"share", unknown}, exitNotFound, []string{"not found", unknown}},
		{"block get unknown CID", []string{"block", "get", unknown}, exitNotFound, []string{"not found", unknown}},
		{"block stat unknown CID", []string{"block", "stat", unknown}, exitNotFound, []string{"not found", unknown}},
		{"cat CID of a chunk", []string{"cat", chunk}, exitIntegrity, []string{"chunk"}},
		{"get CID of a chunk", []string{"get", chunk}, exitIntegrity, []string{"chunk"}},
		{"cat corrupted capability", []string{"cat", badCap}, -1, []string{"capabilit", "checksum", "key", "authenticat"}},
		{"get corrupted capability", []string{"get", badCap}, -1, []string{"capabilit", "checksum", "key", "authenticat"}},
		{"cat truncated capability", []string{"cat", capa[:len(capa)-5]}, exitUsage, []string{"capabilit"}},
		{"cat capability with a bad letter", []string{"cat", capa[:20] + "!" + capa[21:]}, exitUsage, []string{"capabilit", "cid"}},
		{"get -o into a missing directory", []string{"get", c, "-o", filepath.Join(srcDir, "no", "such", "dir", "f")}, -2, nil},
		{"config unknown key", []string{"config", "No.Such.Key"}, exitUsage, []string{"No.Such.Key", "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, n.repo)
			out := t.TempDir()
			res := n.runDir(t, out, tt.args...)
			switch tt.code {
			case -1: // a checksum may reject the token (2) or the key fails to open it (4)
				requireCode(t, res, exitUsage, exitIntegrity)
			case -2: // an I/O failure: not a usage error, but it must fail cleanly
				requireCode(t, res, exitFailure, exitUsage)
			default:
				requireCode(t, res, tt.code)
			}
			msg := requireErrLine(t, res)
			check(t, len(res.stdout) == 0, "a failed command wrote to stdout: %s", res)
			if len(tt.mention) > 0 {
				check(t, mentionsAny(msg, tt.mention), "error message should mention one of %q: %s", tt.mention, res)
			}
			requireUnchanged(t, before, n.repo)
			check(t, len(listDir(t, out)) == 0, "failed command left files in its working directory: %q", listDir(t, out))
		})
	}
}

// TestWrongKeyCapability builds a capability that names file X but carries
// the key of file Y: opening X with it must fail authentication (exit 4)
// and print no plaintext.
func TestWrongKeyCapability(t *testing.T) {
	t.Parallel()
	a, b := newNode(t), newNode(t)
	dir := t.TempDir()
	x := randBytes(2*mib + 3)
	y := randBytes(2*mib + 3)
	cx := a.add(t, writeFile(t, dir, "x.bin", x))
	cy := a.add(t, writeFile(t, dir, "y.bin", y))
	capY := a.share(t, cy)
	wrong := swapCapabilityRoot(t, capY, cy, cx)

	// On B, which does not own X, only the capability's key can open X.
	copyBlocks(t, a.repo, b.repo, a.refs(t, cx))
	res := b.run(t, "cat", wrong)
	msg := requireFail(t, res, exitIntegrity)
	check(t, mentionsAny(msg, []string{"key", "authenticat", "capabilit", "decrypt"}),
		"message should say the key does not open the file: %s", res)
	check(t, len(res.stdout) == 0, "cat with a wrong key printed %d bytes", len(res.stdout))

	out := t.TempDir()
	res = b.runDir(t, out, "get", wrong)
	requireFail(t, res, exitIntegrity)
	check(t, len(listDir(t, out)) == 0, "get with a wrong key left files: %q", listDir(t, out))

	// On the owner A, the wrong key must not produce wrong bytes: either it
	// is refused, or A opens X with its own key.
	res = a.run(t, "cat", wrong)
	if res.code == exitOK {
		requireSameBytes(t, x, res.stdout, "owner's cat of a wrong-key capability")
		t.Logf("the owner ignores a capability's wrong key and opens its file with its own")
	} else {
		requireFail(t, res, exitIntegrity)
		check(t, len(res.stdout) == 0, "owner's cat with a wrong key printed %d bytes", len(res.stdout))
	}

	// The untouched capability of X works on B.
	requireSameBytes(t, x, b.cat(t, a.share(t, cx)), "cat of X's capability on B")
}

// TestNewerRepoVersion: a repo written by a newer casd is refused with
// exit 5 and a message naming the version, and left alone.
func TestNewerRepoVersion(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	src := writeFile(t, t.TempDir(), "f.txt", []byte("hello version\n"))
	c := n.add(t, src)
	noErr(t, os.WriteFile(filepath.Join(n.repo, "version"), []byte("99\n"), 0o600))
	before := snapshot(t, n.repo)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"cat", []string{"cat", c}},
		{"add", []string{"add", src}},
		{"ls", []string{"ls"}},
		{"repo verify", []string{"repo", "verify"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := n.run(t, tt.args...)
			msg := requireFail(t, res, exitBusy)
			check(t, strings.Contains(msg, "99"), "message must name the repo version 99: %s", res)
			check(t, len(res.stdout) == 0, "refused command wrote to stdout: %s", res)
			requireUnchanged(t, before, n.repo)
		})
	}
}

// TestNoRepo: commands on a directory that is not a repo exit 5 and create
// nothing.
func TestNoRepo(t *testing.T) {
	t.Parallel()
	n := newEmptyNode(t)
	src := writeFile(t, t.TempDir(), "f.txt", []byte("no repo here\n"))
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"ls", []string{"ls"}},
		{"add", []string{"add", src}},
		{"cat", []string{"cat", randomCID(t)}},
		{"repo stat", []string{"repo", "stat"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := n.run(t, tt.args...)
			requireFail(t, res, exitBusy)
			_, err := os.Stat(n.repo)
			check(t, os.IsNotExist(err), "a command without a repo created %s (stat: %v)", n.repo, err)
		})
	}
}

// corruptToken changes one character in the middle of a capability (in the
// part after the CID, where the key sits) to another valid base32 letter.
func corruptToken(tok string) string {
	i := len(tok) * 3 / 4
	b := []byte(tok)
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

func mustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	return requireCID(t, s)
}

// mentionsAny reports whether msg contains one of words, ignoring case.
func mentionsAny(msg string, words []string) bool {
	low := strings.ToLower(msg)
	for _, w := range words {
		if strings.Contains(low, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// capEncoding and capChecksum follow the capability token format (version
// 1): "casd1" + lowercase unpadded base32 of root CID bytes || 32-byte file
// key || first 4 bytes of SHA-256("casd/v1/capability\x00" || CID || key).
var capEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func capChecksum(payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte("casd/v1/capability\x00"))
	h.Write(payload)
	return h.Sum(nil)[:4]
}

// swapCapabilityRoot returns a well-formed capability for root newRoot that
// carries the file key of tok (a capability of oldRoot).
func swapCapabilityRoot(t testing.TB, tok, oldRoot, newRoot string) string {
	t.Helper()
	raw, err := capEncoding.DecodeString(strings.TrimPrefix(tok, "casd1"))
	noErr(t, err, "capability "+tok+" is not casd1 + lowercase unpadded base32")
	oldB, newB := mustCID(t, oldRoot).Bytes(), mustCID(t, newRoot).Bytes()
	check(t, len(raw) == len(oldB)+32+4 && bytes.HasPrefix(raw, oldB),
		"capability of %s: %d bytes, want CID (%d) + key (32) + checksum (4)", oldRoot, len(raw), len(oldB))
	check(t, bytes.Equal(raw[len(raw)-4:], capChecksum(raw[:len(raw)-4])), "capability checksum format differs from v1")
	payload := append(append([]byte{}, newB...), raw[len(oldB):len(raw)-4]...)
	return "casd1" + capEncoding.EncodeToString(append(payload, capChecksum(payload)...))
}
