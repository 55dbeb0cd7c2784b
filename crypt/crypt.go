// Package crypt holds the few cryptographic constructions casd relies on:
// convergent keys, sealing under a key that seals one plaintext only,
// deterministic (SIV-style) key wrapping under the master key, the owner's
// signing key, and the passphrase-sealed key file.
//
// # Keys
//
// A [Key] is 32 bytes, used with AES-256-GCM. Three kinds appear in casd:
//
//   - the convergence secret, which makes chunk keys unpredictable to anyone
//     who does not hold it: [ConvergentKey];
//   - content keys (chunk keys, manifest node keys, file keys), each derived
//     from the plaintext it seals and therefore used for that one plaintext
//     only, which is why [Seal] uses a fixed all-zero nonce;
//   - the master key, which wraps many file keys: [WrapKey] derives its nonce
//     from what it seals so that re-adding a file yields identical bytes while
//     no nonce is ever reused with a different plaintext.
//
// This package imports nothing else from casd.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the size in bytes of every symmetric key.
const KeySize = 32

// NonceSize and Overhead are those of AES-256-GCM.
const (
	NonceSize = 12
	Overhead  = 16
)

// WrappedKeySize is the size of a key wrapped by [WrapKey]: nonce, key, tag.
const WrappedKeySize = NonceSize + KeySize + Overhead

// ErrUnauthenticated is returned when a ciphertext does not open under the
// given key: the key is wrong or the ciphertext was altered.
var ErrUnauthenticated = errors.New("crypt: message authentication failed (wrong key or corrupt data)")

// Key is a 256-bit symmetric key.
type Key [KeySize]byte

// zeroNonce is the nonce of keys that seal exactly one plaintext.
var zeroNonce [NonceSize]byte

// ConvergentKey returns HMAC-SHA256(secret, SHA-256(plaintext)): the key of a
// chunk (or manifest node) is a function of its content, within the domain of
// one convergence secret.
func ConvergentKey(secret *Key, plaintext []byte) Key {
	sum := sha256.Sum256(plaintext)
	return convergentKeyOfHash(secret, sum[:])
}

func convergentKeyOfHash(secret *Key, hash []byte) Key {
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(hash)
	var k Key
	mac.Sum(k[:0])
	return k
}

// NewAEAD returns AES-256-GCM under k.
func NewAEAD(k *Key) cipher.AEAD {
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(fmt.Sprintf("crypt: aes.NewCipher with a %d-byte key: %v", len(k), err))
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("crypt: cipher.NewGCM: %v", err))
	}
	return aead
}

// Seal appends to dst the AES-256-GCM sealing of plaintext under k with the
// all-zero nonce and associated data ad. The caller guarantees that k seals
// this plaintext only (k is derived from it).
func Seal(dst []byte, k *Key, plaintext, ad []byte) []byte {
	return NewAEAD(k).Seal(dst, zeroNonce[:], plaintext, ad)
}

// Open is the inverse of [Seal]; it returns [ErrUnauthenticated] when the
// ciphertext does not authenticate.
func Open(dst []byte, k *Key, ciphertext, ad []byte) ([]byte, error) {
	pt, err := NewAEAD(k).Open(dst, zeroNonce[:], ciphertext, ad)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return pt, nil
}

// derive returns HMAC-SHA256(k, label || data...), a labelled PRF output.
func derive(k *Key, label string, data ...[]byte) []byte {
	mac := hmac.New(sha256.New, k[:])
	mac.Write([]byte(label))
	for _, d := range data {
		mac.Write(d)
	}
	return mac.Sum(nil)
}

// WrapKey seals key under the master key with associated data ad (the
// context the wrapped key belongs to). The nonce is derived from master, ad
// and key (SIV style): wrapping the same key in the same context twice gives
// the same bytes, and two different keys never share a nonce.
func WrapKey(master, key *Key, ad []byte) []byte {
	nonce := derive(master, "casd/v1/wrap-nonce\x00", ad, key[:])[:NonceSize]
	out := make([]byte, 0, WrappedKeySize)
	out = append(out, nonce...)
	return NewAEAD(master).Seal(out, nonce, key[:], ad)
}

// UnwrapKey is the inverse of [WrapKey]. It returns [ErrUnauthenticated] if
// the wrapped key was not made by this master key for this ad.
func UnwrapKey(master *Key, wrapped, ad []byte) (Key, error) {
	var k Key
	if len(wrapped) != WrappedKeySize {
		return k, fmt.Errorf("unwrap key: %d bytes, want %d: %w", len(wrapped), WrappedKeySize, ErrUnauthenticated)
	}
	nonce := wrapped[:NonceSize]
	pt, err := NewAEAD(master).Open(nil, nonce, wrapped[NonceSize:], ad)
	if err != nil {
		return k, ErrUnauthenticated
	}
	// The nonce must be the one WrapKey derives, or the wrapping is not ours.
	want := derive(master, "casd/v1/wrap-nonce\x00", ad, pt)[:NonceSize]
	if !hmac.Equal(want, nonce) {
		return k, ErrUnauthenticated
	}
	copy(k[:], pt)
	return k, nil
}

// OwnerKey derives the owner's Ed25519 signing key from the master key. The
// owner, not the peer ID, signs requests that change a pin, so a node
// restored from the key file takes over its files.
func OwnerKey(master *Key) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(derive(master, "casd/v1/owner-key"))
}
