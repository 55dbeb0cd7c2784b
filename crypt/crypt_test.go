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

// TestConvergentKeyKnownAnswer pins the labelled derivation of format 2,
// HMAC-SHA256(secret, label || 0 || SHA-256(part)...), and format 1's
// unlabelled HMAC-SHA256(secret, SHA-256(plaintext)), each computed
// independently (Python's hmac and hashlib).
func TestConvergentKeyKnownAnswer(t *testing.T) {
	k := crypt.ConvergentKey(key(1), crypt.LabelChunk, []byte("hello"))
	require.Equal(t, "468066a562c5563e9b05ef6ec1358311711c61fddf6a9d104026b1f33deac61b", hex.EncodeToString(k[:]))
	k = crypt.ConvergentKey(key(1), crypt.LabelRoot, []byte("head"), []byte("body"))
	require.Equal(t, "ef1d537966a2a4d5e05a4dfa741b348732ce335766b2119e960899dc858a1021", hex.EncodeToString(k[:]))
	k = crypt.ConvergentKeyV1(key(1), []byte("hello"))
	require.Equal(t, "291c708438d2711bf58e07fa2ad87ac8b3291f0c54c806c036af10a8c5267982", hex.EncodeToString(k[:]))
	require.NotEqual(t, k, crypt.ConvergentKeyV1(key(2), []byte("hello")), "the secret must matter")
}

// TestConvergentKeyDomains: the same content gives a different key under
// each label, and moving bytes from one part to the next changes the key.
func TestConvergentKeyDomains(t *testing.T) {
	seen := map[crypt.Key]string{}
	for _, l := range []string{crypt.LabelChunk, crypt.LabelNode, crypt.LabelRoot} {
		k := crypt.ConvergentKey(key(1), l, []byte("same"))
		require.NotContains(t, seen, k, "label %s gives the key of %s", l, seen[k])
		seen[k] = l
	}
	require.NotEqual(t, crypt.ConvergentKey(key(1), crypt.LabelNode, []byte("ab"), []byte("c")),
		crypt.ConvergentKey(key(1), crypt.LabelNode, []byte("a"), []byte("bc")))
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
	_, err = crypt.UnwrapKeyV1(master, w, []byte("ctx"))
	require.ErrorIs(t, err, crypt.ErrUnauthenticated, "a format-2 wrap must not open as format 1")
}

// TestWrapKeyKnownAnswer pins the wrap of format 2, computed independently
// (Python's hmac and the cryptography package's AESGCM): the AES key and
// the nonce key are HKDF-Expand-SHA256 subkeys of the master key, whose
// one-block output is HMAC(master, info || 0x01), so the master key itself
// is never an AES key; nonce = HMAC(nonceKey, "casd/v2/wrap-nonce\0" ||
// be64(len(ad)) || ad || key)[:12].
func TestWrapKeyKnownAnswer(t *testing.T) {
	w := crypt.WrapKey(key(5), key(6), []byte("ctx"))
	require.Equal(t, "e55b64563a4f622c930efc6c6ac51ce46b7c8a52fc9b449923f860abe757740d7100ecd086aec62c8a0c3c7b873dc1f0f935c915a20920b42b569377", hex.EncodeToString(w))
	_, err := crypt.NewAEAD(key(5)).Open(nil, w[:crypt.NonceSize], w[crypt.NonceSize:], []byte("ctx"))
	require.Error(t, err, "the master key itself must not open a wrap")
}

// TestUnwrapKeyV1KnownAnswer opens a wrap made by format 1 (the root of
// the "hello" vector of dag's golden vectors, master 11...11): its AES key
// is the master key and its nonce HMAC(master, "casd/v1/wrap-nonce\0" ||
// ad || key)[:12].
func TestUnwrapKeyV1KnownAnswer(t *testing.T) {
	w, _ := hex.DecodeString("0ed7a7de4de12e25bfa28e554634154271041eea9551d2d7f94211b589d985e155cc11a9dc96f6b5a8d8e75387294a8bb1d64f2b03bf6c4ac57360fe")
	got, err := crypt.UnwrapKeyV1(key(0x11), w, []byte("casd/v1/root-file-key"))
	require.NoError(t, err)
	require.Equal(t, "fe54ab89c477528784ed524e5dad41ddc04b9b6ba333be1a4688820bebda0499", hex.EncodeToString(got[:]))
	_, err = crypt.UnwrapKey(key(0x11), w, []byte("casd/v1/root-file-key"))
	require.ErrorIs(t, err, crypt.ErrUnauthenticated, "a format-1 wrap must not open as format 2")
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

// keyFileVector is a key file made independently (Python: the cryptography
// package's Argon2id and AESGCM) from passphrase "correct horse battery
// staple", time 1, memory 64 KiB, 1 thread, salt 00 01 ... 0f, nonce 10 11
// ... 1b, master 11...11 and convergence 12...12; docs/format.md shows it.
const keyFileVector = `-----BEGIN CASD KEY FILE-----
AQAAAAEAAABAAQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhvSxqDRzPurOMtq
yOoi+el6WgHAfkM6wJ4OvV+Jv8ilXRA1waaIYQ0T/Sw97qLowX8Ylc5rID0accLi
ID9XXe+Jgtnya6NCl7YtdL9engc4iQ==
-----END CASD KEY FILE-----
`

// TestKeyFileKnownAnswer pins every byte of the key file: the same
// passphrase, parameters, salt and nonce give exactly the vector, and the
// vector opens to its secrets.
func TestKeyFileKnownAnswer(t *testing.T) {
	s := crypt.Secrets{Master: *key(0x11), Convergence: *key(0x12)}
	pass := []byte("correct horse battery staple")
	var random []byte
	for i := range 28 {
		random = append(random, byte(i))
	}
	file, err := crypt.SealKeyFileFrom(s, pass, crypt.KDFParams{Time: 1, Memory: 64, Threads: 1}, bytes.NewReader(random))
	require.NoError(t, err)
	require.Equal(t, keyFileVector, string(file))

	got, err := crypt.OpenKeyFile([]byte(keyFileVector), pass)
	require.NoError(t, err)
	require.Equal(t, s, got)
}
