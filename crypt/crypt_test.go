package crypt_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/crypt"
)

func key(b byte) *crypt.Key {
	var k crypt.Key
	for i := range k {
		k[i] = b
	}
	return &k
}

// TestConvergentKeyKnownAnswer pins the derivation to HMAC-SHA256(secret,
// SHA-256(plaintext)), computed independently (Python's hmac and hashlib).
func TestConvergentKeyKnownAnswer(t *testing.T) {
	k := crypt.ConvergentKey(key(1), []byte("hello"))
	require.Equal(t, "291c708438d2711bf58e07fa2ad87ac8b3291f0c54c806c036af10a8c5267982", hex.EncodeToString(k[:]))
	require.NotEqual(t, k, crypt.ConvergentKey(key(2), []byte("hello")), "the secret must matter")
}

// TestOwnerKeyKnownAnswer pins the owner key's seed to
// HMAC-SHA256(master, "casd/v1/owner-key").
func TestOwnerKeyKnownAnswer(t *testing.T) {
	seed, _ := hex.DecodeString("d0ee8d1dfce31e6ee20f986fe825267cb9ea02d12f69988e0b435d4db93ad480")
	require.Equal(t, ed25519.NewKeyFromSeed(seed), crypt.OwnerKey(key(2)))
}

func TestSealOpen(t *testing.T) {
	k := key(3)
	ct := crypt.Seal(nil, k, []byte("plaintext"), []byte("ad"))
	require.Len(t, ct, len("plaintext")+crypt.Overhead)
	pt, err := crypt.Open(nil, k, ct, []byte("ad"))
	require.NoError(t, err)
	require.Equal(t, "plaintext", string(pt))

	cases := map[string]func() error{
		"wrong key": func() error { _, err := crypt.Open(nil, key(4), ct, []byte("ad")); return err },
		"wrong ad":  func() error { _, err := crypt.Open(nil, k, ct, []byte("xx")); return err },
		"flipped": func() error {
			bad := bytes.Clone(ct)
			bad[0] ^= 1
			_, err := crypt.Open(nil, k, bad, []byte("ad"))
			return err
		},
		"truncated": func() error { _, err := crypt.Open(nil, k, ct[:5], []byte("ad")); return err },
	}
	for name, open := range cases {
		t.Run(name, func(t *testing.T) { require.ErrorIs(t, open(), crypt.ErrUnauthenticated) })
	}
}

func TestWrapKey(t *testing.T) {
	master, fk := key(5), key(6)
	w := crypt.WrapKey(master, fk, []byte("ctx"))
	require.Len(t, w, crypt.WrappedKeySize)
	require.Equal(t, w, crypt.WrapKey(master, fk, []byte("ctx")), "wrapping must be deterministic")
	require.NotEqual(t, w[:crypt.NonceSize], crypt.WrapKey(master, key(7), []byte("ctx"))[:crypt.NonceSize],
		"two keys must not share a nonce")

	got, err := crypt.UnwrapKey(master, w, []byte("ctx"))
	require.NoError(t, err)
	require.Equal(t, *fk, got)

	_, err = crypt.UnwrapKey(key(9), w, []byte("ctx"))
	require.ErrorIs(t, err, crypt.ErrUnauthenticated)
	_, err = crypt.UnwrapKey(master, w, []byte("other"))
	require.ErrorIs(t, err, crypt.ErrUnauthenticated)
	_, err = crypt.UnwrapKey(master, w[:10], []byte("ctx"))
	require.ErrorIs(t, err, crypt.ErrUnauthenticated)
}

var cheapKDF = crypt.KDFParams{Time: 1, Memory: 64, Threads: 1}

func TestKeyFile(t *testing.T) {
	s := testSecrets()
	file, err := crypt.SealKeyFile(s, []byte("correct horse"), cheapKDF)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(file, []byte("-----BEGIN CASD KEY FILE-----")))
	requireNoSecret(t, file, "master key", s.Master[:])
	requireNoSecret(t, file, "convergence secret", s.Convergence[:])

	got, err := crypt.OpenKeyFile(file, []byte("correct horse"))
	require.NoError(t, err)
	require.Equal(t, s, got)

	_, err = crypt.OpenKeyFile(file, []byte("wrong"))
	require.ErrorIs(t, err, crypt.ErrUnauthenticated)
	_, err = crypt.OpenKeyFile([]byte("not a key file"), []byte("x"))
	require.ErrorIs(t, err, crypt.ErrBadKeyFile)
	_, err = crypt.SealKeyFile(s, nil, cheapKDF)
	require.Error(t, err)

	again, err := crypt.SealKeyFile(s, []byte("correct horse"), cheapKDF)
	require.NoError(t, err)
	require.NotEqual(t, file, again, "salt and nonce must be fresh")
}

// TestKeyFileKDFBounds: a key file states its own Argon2id cost, so a
// crafted one could ask for an absurd amount of work or memory before the
// passphrase is even checked. Parameters at the limits open; beyond them the
// file is refused as malformed, before the KDF runs.
func TestKeyFileKDFBounds(t *testing.T) {
	s := testSecrets()
	for _, p := range []crypt.KDFParams{
		{Time: 1, Memory: 8, Threads: 1},
		{Time: 16, Memory: 8, Threads: 1},
		{Time: 1, Memory: 8 * 255, Threads: 255},
	} {
		t.Run(fmt.Sprintf("%+v opens", p), func(t *testing.T) {
			file, err := crypt.SealKeyFile(s, []byte("pass"), p)
			require.NoError(t, err)
			got, err := crypt.OpenKeyFile(file, []byte("pass"))
			require.NoError(t, err)
			require.Equal(t, s, got)
		})
	}
	// Crafted files: the header of a real one with its cost rewritten
	// (time at bytes 1-4, memory at 5-8, threads at 9, big-endian).
	file, err := crypt.SealKeyFile(s, []byte("pass"), cheapKDF)
	require.NoError(t, err)
	blk, _ := pem.Decode(file)
	require.NotNil(t, blk)
	for _, p := range []crypt.KDFParams{
		{Time: 0, Memory: 64, Threads: 1},
		{Time: 17, Memory: 8, Threads: 1},
		{Time: 1 << 31, Memory: 8, Threads: 1},
		{Time: 1, Memory: 7, Threads: 1},
		{Time: 1, Memory: 1<<20 + 1, Threads: 1},
		{Time: 1, Memory: 1 << 31, Threads: 1},
		{Time: 1, Memory: 64, Threads: 0},
	} {
		t.Run(fmt.Sprintf("%+v refused", p), func(t *testing.T) {
			body := bytes.Clone(blk.Bytes)
			binary.BigEndian.PutUint32(body[1:], p.Time)
			binary.BigEndian.PutUint32(body[5:], p.Memory)
			body[9] = p.Threads
			crafted := pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: body})
			_, err := crypt.OpenKeyFile(crafted, []byte("pass"))
			require.ErrorIs(t, err, crypt.ErrBadKeyFile)
		})
	}
}

// TestKeyFileTampered: every byte of the body is authenticated (the header,
// with the KDF parameters, salt and nonce, as associated data), and a body
// of any other length or version is not a key file.
func TestKeyFileTampered(t *testing.T) {
	s := testSecrets()
	file, err := crypt.SealKeyFile(s, []byte("pass"), cheapKDF)
	require.NoError(t, err)
	blk, _ := pem.Decode(file)
	require.NotNil(t, blk)
	reseal := func(body []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: body})
	}
	for i := range blk.Bytes {
		body := bytes.Clone(blk.Bytes)
		body[i] ^= 0x01
		_, err := crypt.OpenKeyFile(reseal(body), []byte("pass"))
		require.Error(t, err, "byte %d flipped", i)
		if !errors.Is(err, crypt.ErrBadKeyFile) {
			require.ErrorIs(t, err, crypt.ErrUnauthenticated, "byte %d flipped", i)
		}
	}
	for _, body := range [][]byte{blk.Bytes[:len(blk.Bytes)-1], append(bytes.Clone(blk.Bytes), 0)} {
		_, err := crypt.OpenKeyFile(reseal(body), []byte("pass"))
		require.ErrorIs(t, err, crypt.ErrBadKeyFile, "body of %d bytes", len(body))
	}
	other := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: blk.Bytes})
	_, err = crypt.OpenKeyFile(other, []byte("pass"))
	require.ErrorIs(t, err, crypt.ErrBadKeyFile, "another PEM type")
	_, err = crypt.OpenKeyFile(append(bytes.Clone(file), "trailing"...), []byte("pass"))
	require.ErrorIs(t, err, crypt.ErrBadKeyFile, "trailing garbage")
	got, err := crypt.OpenKeyFile(append(bytes.Clone(file), "\n\n"...), []byte("pass"))
	require.NoError(t, err, "trailing blank lines")
	require.Equal(t, s, got)
}

// testSecrets returns secrets of distinct, irregular bytes, so that a
// search for them cannot match by accident.
func testSecrets() crypt.Secrets {
	var s crypt.Secrets
	copy(s.Master[:], sha256Of("master"))
	copy(s.Convergence[:], sha256Of("convergence"))
	return s
}

func sha256Of(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// requireNoSecret fails t if secret shows in file in any encoding someone
// might write it in: raw bytes, hex in either case, or base64 (standard or
// URL alphabet, padded or not, at any alignment within a longer base64
// text). It looks in the file as text, with line breaks removed (PEM wraps
// its base64 at 64 columns), and in the PEM body, decoded.
func requireNoSecret(t testing.TB, file []byte, what string, secret []byte) {
	t.Helper()
	flat := strings.NewReplacer("\r", "", "\n", "").Replace(string(file))
	places := map[string]string{"file": string(file), "file without line breaks": flat}
	if blk, _ := pem.Decode(file); blk != nil {
		places["PEM body"] = string(blk.Bytes)
		for k, v := range blk.Headers {
			places["PEM header "+k] = v
		}
	}
	forms := map[string]string{
		"raw":       string(secret),
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
			if strings.Contains(text, enc) {
				t.Fatalf("the %s is in the %s, as %s", what, where, form)
			}
		}
	}
}

func FuzzOpenKeyFile(f *testing.F) {
	file, err := crypt.SealKeyFile(crypt.Secrets{}, []byte("p"), cheapKDF)
	require.NoError(f, err)
	f.Add(file)
	f.Fuzz(func(t *testing.T, data []byte) {
		// Must not panic nor allocate absurdly (KDF parameters are bounded).
		_, _ = crypt.OpenKeyFile(data, []byte("p"))
	})
}
