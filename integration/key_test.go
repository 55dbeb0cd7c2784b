package integration

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitRefusesExisting: init on an existing repo exits 1 and changes
// nothing, whatever the profile.
func TestInitRefusesExisting(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	before := snapshot(t, n.repo)
	for _, args := range [][]string{
		{"init"},
		{"init", "--profile=local"},
		{"init", "--profile=server"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := n.run(t, args...)
			requireFail(t, res, exitFailure)
			check(t, len(res.stdout) == 0, "refused init wrote to stdout: %s", res)
			requireUnchanged(t, before, n.repo)
		})
	}
	t.Run("unknown profile", func(t *testing.T) {
		fresh := newEmptyNode(t)
		res := fresh.run(t, "init", "--profile=nope")
		requireFail(t, res, exitUsage)
		_, err := os.Stat(fresh.repo)
		check(t, os.IsNotExist(err), "init with a bad profile created %s", fresh.repo)
	})
	t.Run("other profiles", func(t *testing.T) {
		for _, p := range []string{"default", "server"} {
			fresh := newEmptyNode(t)
			res := fresh.run(t, "init", "--profile="+p)
			fresh.requireOK(t, res)
			parseInit(t, fresh, res)
		}
	})
	t.Run("--repo flag wins over CASD_PATH", func(t *testing.T) {
		fresh := newEmptyNode(t)
		dir := filepath.Join(t.TempDir(), "flagged")
		res := fresh.run(t, "--repo", dir, "init", "--profile=local")
		fresh.requireOK(t, res)
		check(t, strings.HasPrefix(res.out(), "initialized casd repo at "+dir+"\n"), "init --repo: %s", res)
		_, err := os.Stat(fresh.repo)
		check(t, os.IsNotExist(err), "init --repo also created $CASD_PATH %s", fresh.repo)
		res = fresh.run(t, "--repo", dir, "ls")
		fresh.requireOK(t, res)
	})
}

// TestKeyExportRestore exports the keys of repo A, restores them into a new
// repo, and opens A's file there by its bare CID once its blocks are copied
// over. A wrong passphrase fails the restore and creates nothing.
func TestKeyExportRestore(t *testing.T) {
	t.Parallel()
	a := newNode(t)
	data := randBytes(2*mib + 9)
	c := a.add(t, writeFile(t, t.TempDir(), "keep me.bin", data))
	refs := a.refs(t, c)

	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, "casd.key")
	res := a.runPass(t, testPassphrase, "key", "export", "-o", keyFile)
	a.requireOK(t, res)
	fi, err := os.Stat(keyFile)
	noErr(t, err, "key export -o wrote no file")
	check(t, fi.Mode().Perm() == 0o600, "key file mode %v, want 0600", fi.Mode().Perm())
	armored, err := os.ReadFile(keyFile)
	noErr(t, err)
	check(t, len(armored) > 0 && isPrintableASCII(armored), "key file must be ASCII armored text, got %s", clip(armored, 200))
	secrets := filepathsUnder(t, filepath.Join(a.repo, "keys"))
	check(t, len(secrets) >= 2, "repo keys dir holds %d files, want the master key and the convergence secret", len(secrets))
	for _, p := range secrets {
		secret, err := os.ReadFile(p)
		noErr(t, err)
		if len(secret) >= 16 {
			requireNoSecret(t, armored, "the key file", p, secret)
		}
	}

	// Export to stdout works too and is also armored text, and no secret
	// shows on stdout or stderr.
	res = a.runPass(t, testPassphrase, "key", "export")
	a.requireOK(t, res)
	check(t, len(res.stdout) > 0 && isPrintableASCII(res.stdout), "key export to stdout: %s", res)
	for _, p := range secrets {
		secret, err := os.ReadFile(p)
		noErr(t, err)
		if len(secret) >= 16 {
			requireNoSecret(t, res.stdout, "key export's stdout", p, secret)
			requireNoSecret(t, []byte(res.stderr), "key export's stderr", p, secret)
		}
	}

	t.Run("export without a passphrase", func(t *testing.T) {
		// No $CASD_PASSPHRASE and no terminal: export must fail, not hang or
		// read a passphrase from piped stdin, and write no key file.
		target := filepath.Join(t.TempDir(), "k")
		res := a.runIn(t, strings.NewReader(testPassphrase+"\n"+testPassphrase+"\n"), "key", "export", "-o", target)
		check(t, res.code != exitOK, "key export without a passphrase succeeded: %s", res)
		requireErrLine(t, res)
		_, err := os.Stat(target)
		check(t, os.IsNotExist(err), "failed key export left %s", target)
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		r := newEmptyNode(t)
		res := r.runPass(t, "not the passphrase", "init", "--profile=local", "--restore", keyFile)
		requireFail(t, res, exitIntegrity)
		_, err := os.Stat(r.repo)
		check(t, os.IsNotExist(err), "failed restore left a repo at %s", r.repo)
	})
	t.Run("missing key file", func(t *testing.T) {
		r := newEmptyNode(t)
		res := r.runPass(t, testPassphrase, "init", "--restore", filepath.Join(keyDir, "nope.key"))
		requireFail(t, res, exitUsage)
		_, err := os.Stat(r.repo)
		check(t, os.IsNotExist(err), "failed restore left a repo at %s", r.repo)
	})
	t.Run("not a key file", func(t *testing.T) {
		r := newEmptyNode(t)
		junk := writeFile(t, t.TempDir(), "junk.key", []byte("hello\n"))
		res := r.runPass(t, testPassphrase, "init", "--restore", junk)
		requireCode(t, res, exitUsage, exitIntegrity)
		requireErrLine(t, res)
		_, err := os.Stat(r.repo)
		check(t, os.IsNotExist(err), "failed restore left a repo at %s", r.repo)
	})
	t.Run("restore opens the old files", func(t *testing.T) {
		r := newEmptyNode(t)
		res := r.runPass(t, testPassphrase, "init", "--profile=local", "--restore", keyFile)
		r.requireOK(t, res)
		r.id = parseInit(t, r, res)

		res = r.run(t, "cat", c)
		requireFail(t, res, exitNotFound)

		copyBlocks(t, a.repo, r.repo, refs)
		requireSameBytes(t, data, r.cat(t, c), "cat by bare CID in the restored repo")
		out := t.TempDir()
		res = r.runDir(t, out, "get", c)
		r.requireOK(t, res)
		got, err := os.ReadFile(filepath.Join(out, "keep me.bin"))
		noErr(t, err)
		requireSameBytes(t, data, got, "get by bare CID in the restored repo")

		// Same convergence secret: adding the same file gives the same CID.
		again := writeFile(t, t.TempDir(), "keep me.bin", data)
		check(t, r.add(t, again) == c, "the restored repo gives another CID for the same file")
	})
}

// requireNoSecret fails t if secret (the bytes of file) shows in out in any
// encoding someone might write it in: raw bytes, hex in either case, or
// base64 (standard or URL alphabet, padded or not, at any alignment within a
// longer base64 text). It looks in out as text, with line breaks removed (PEM wraps its
// base64 at 64 columns), and in the body and headers of a PEM block in out,
// decoded. (crypt's unit test has the same check for the key file format.)
func requireNoSecret(t testing.TB, out []byte, outName, file string, secret []byte) {
	t.Helper()
	places := map[string]string{
		"text":                  string(out),
		"text, line breaks out": strings.NewReplacer("\r", "", "\n", "").Replace(string(out)),
	}
	if blk, _ := pem.Decode(out); blk != nil {
		places["PEM body"] = string(blk.Bytes)
		for k, v := range blk.Headers {
			places["PEM header "+k] = v
		}
	}
	forms := map[string]string{
		"raw bytes": string(secret),
		"hex":       hex.EncodeToString(secret),
		"HEX":       strings.ToUpper(hex.EncodeToString(secret)),
		"base64":    base64.StdEncoding.EncodeToString(secret),
		"base64url": base64.URLEncoding.EncodeToString(secret),
	}
	// Unpadded base64, and base64 of the secret starting 1 or 2 bytes into
	// a 3-byte group, without the last, partial group.
	for shift := range 3 {
		tail := secret[shift:]
		whole := len(tail) / 3 * 3
		forms[fmt.Sprintf("raw base64 +%d", shift)] = base64.RawStdEncoding.EncodeToString(tail[:whole])
		forms[fmt.Sprintf("raw base64url +%d", shift)] = base64.RawURLEncoding.EncodeToString(tail[:whole])
	}
	for where, text := range places {
		for form, enc := range forms {
			check(t, !strings.Contains(text, enc), "%s holds %s (%s), as %s", outName, file, where, form)
		}
	}
}

func isPrintableASCII(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// filepathsUnder returns the regular files under dir (none if dir is absent).
func filepathsUnder(t testing.TB, dir string) []string {
	t.Helper()
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	var out []string
	for rel := range snapshot(t, dir) {
		out = append(out, filepath.Join(dir, rel))
	}
	return out
}
