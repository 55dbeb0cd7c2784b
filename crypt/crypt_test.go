package crypt_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
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
	s := crypt.Secrets{Master: *key(1), Convergence: *key(2)}
	file, err := crypt.SealKeyFile(s, []byte("correct horse"), cheapKDF)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(file, []byte("-----BEGIN CASD KEY FILE-----")))
	require.False(t, bytes.Contains(file, s.Master[:4]))

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

func FuzzOpenKeyFile(f *testing.F) {
	file, err := crypt.SealKeyFile(crypt.Secrets{}, []byte("p"), cheapKDF)
	require.NoError(f, err)
	f.Add(file)
	f.Fuzz(func(t *testing.T, data []byte) {
		// Must not panic nor allocate absurdly (KDF parameters are bounded).
		_, _ = crypt.OpenKeyFile(data, []byte("p"))
	})
}
