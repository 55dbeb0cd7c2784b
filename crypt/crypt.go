// Package crypt holds the few cryptographic constructions casd relies on:
// convergent keys, sealing under a key that seals one plaintext only,
// deterministic (SIV-style) key wrapping under the master key, the owner's
// signing key, and the passphrase-sealed key file.
//
// # Keys
//
// A [Key] is 32 bytes, used with AES-256-GCM or as an HMAC-SHA256 key, never
// both. Three kinds appear in casd:
//
//   - the convergence secret, which makes content keys unpredictable to
//     anyone who does not hold it: it keys only [ConvergentKey], whose label
//     says what kind of block a key is for;
//   - content keys (chunk keys, manifest node keys, file keys), each derived
//     from the plaintext it seals and therefore used for that one plaintext
//     only, which is why [Seal] uses a fixed all-zero nonce;
//   - the master key, which keys only derivations: HKDF subkeys that wrap
//     many file keys ([WrapKey], whose nonce is derived from what it seals
//     so that re-adding a file yields identical bytes while no nonce is ever
//     reused with a different plaintext), and the owner's signing key
//     ([OwnerKey]).
//
// Format 1 used the master key itself as the wrapping AES key and derived
// convergent keys without a label; [UnwrapKeyV1] and [ConvergentKeyV1] are
// kept to read and check version-1 blocks, and nothing writes that way.
//
// This package imports nothing else from casd.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
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

// Labels of the convergent keys of format 2, one per kind of block, so
// that a key derived for one kind can never be the key of another.
const (
	LabelChunk = "casd/v2/chunk-key"
	LabelNode  = "casd/v2/node-key"
	LabelRoot  = "casd/v2/root-key"
)

// ConvergentKey returns HMAC-SHA256(secret, label || 0x00 || SHA-256(part)
// for each part): the key of a block is a function of its content, within
// the domain of one convergence secret and one label. Each part is hashed
// on its own, so that where one part ends and the next starts is fixed.
func ConvergentKey(secret *Key, label string, parts ...[]byte) Key {
	mac := hmac.New(sha256.New, secret[:])
	mac.Write([]byte(label))
	mac.Write([]byte{0})
	for _, p := range parts {
		sum := sha256.Sum256(p)
		mac.Write(sum[:])
	}
	var k Key
	mac.Sum(k[:0])
	return k
}

// ConvergentKeyV1 returns HMAC-SHA256(secret, SHA-256(plaintext)), the
// unlabelled derivation of format 1, kept to check version-1 blocks.
func ConvergentKeyV1(secret *Key, plaintext []byte) Key {
	sum := sha256.Sum256(plaintext)
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(sum[:])
	var k Key
	mac.Sum(k[:0])
	return k
}

// KeysEqual compares two keys in constant time.
func KeysEqual(a, b *Key) bool { return hmac.Equal(a[:], b[:]) }

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

// Subkey labels of the master key (HKDF-Expand info strings). The master
// key keys only derivations: HKDF for these, and HMAC for the owner key.
const (
	labelWrapAEAD  = "casd/v2/master/wrap-aead"
	labelWrapNonce = "casd/v2/master/wrap-nonce"
)

// subkey returns HKDF-Expand-SHA256(parent, label, 32). The parent is a
// uniformly random key, so HKDF's extract step is not needed.
func subkey(parent *Key, label string) Key {
	out, err := hkdf.Expand(sha256.New, parent[:], label, KeySize)
	if err != nil {
		panic(fmt.Sprintf("crypt: hkdf.Expand of %d bytes: %v", KeySize, err)) // cannot fail for 32 bytes
	}
	var k Key
	copy(k[:], out)
	return k
}

// WrapKey seals key with associated data ad (the context the wrapped key
// belongs to) under a subkey of the master key; master itself is never an
// AES key. The nonce is an HMAC, under another subkey, of ad and key (SIV
// style): wrapping the same key in the same context twice gives the same
// bytes, and two different keys never share a nonce.
func WrapKey(master, key *Key, ad []byte) []byte {
	aeadKey := subkey(master, labelWrapAEAD)
	nonce := wrapNonce(master, ad, key[:])
	out := make([]byte, 0, WrappedKeySize)
	out = append(out, nonce...)
	return NewAEAD(&aeadKey).Seal(out, nonce, key[:], ad)
}

// wrapNonce is HMAC(subkey(master, wrap-nonce), "casd/v2/wrap-nonce\0" ||
// be64(len(ad)) || ad || key)[:12].
func wrapNonce(master *Key, ad, key []byte) []byte {
	nk := subkey(master, labelWrapNonce)
	n := binary.BigEndian.AppendUint64(nil, uint64(len(ad)))
	return derive(&nk, "casd/v2/wrap-nonce\x00", n, ad, key)[:NonceSize]
}

// UnwrapKey is the inverse of [WrapKey]. It returns [ErrUnauthenticated] if
// the wrapped key was not made by this master key for this ad.
func UnwrapKey(master *Key, wrapped, ad []byte) (Key, error) {
	aeadKey := subkey(master, labelWrapAEAD)
	return unwrap(&aeadKey, wrapped, ad, func(pt []byte) []byte { return wrapNonce(master, ad, pt) })
}

// UnwrapKeyV1 opens a key wrapped by format 1, whose AES key was the master
// key itself and whose nonce was HMAC(master, "casd/v1/wrap-nonce\0" || ad
// || key)[:12]. It is kept to read version-1 roots; nothing wraps that way
// any more.
func UnwrapKeyV1(master *Key, wrapped, ad []byte) (Key, error) {
	return unwrap(master, wrapped, ad, func(pt []byte) []byte { return wrapNonceV1(master, ad, pt) })
}

func wrapNonceV1(master *Key, ad, key []byte) []byte {
	return derive(master, "casd/v1/wrap-nonce\x00", ad, key)[:NonceSize]
}

// unwrap opens wrapped under aeadKey and checks that its nonce is the one
// that nonceOf derives from the key it holds, or the wrapping is not ours.
func unwrap(aeadKey *Key, wrapped, ad []byte, nonceOf func(pt []byte) []byte) (Key, error) {
	var k Key
	if len(wrapped) != WrappedKeySize {
		return k, fmt.Errorf("unwrap key: %d bytes, want %d: %w", len(wrapped), WrappedKeySize, ErrUnauthenticated)
	}
	nonce := wrapped[:NonceSize]
	pt, err := NewAEAD(aeadKey).Open(nil, nonce, wrapped[NonceSize:], ad)
	if err != nil {
		return k, ErrUnauthenticated
	}
	if !hmac.Equal(nonceOf(pt), nonce) {
		return k, ErrUnauthenticated
	}
	copy(k[:], pt)
	return k, nil
}

// OwnerKey derives the owner's Ed25519 signing key from the master key:
// its seed is HMAC-SHA256(master, "casd/v1/owner-key"), unchanged since
// format 1 so that a restored node keeps its identity as an owner (the
// label keeps it apart from every other derivation from master). The
// owner, not the peer ID, signs requests that change a pin, so a node
// restored from the key file takes over its files.
func OwnerKey(master *Key) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(derive(master, "casd/v1/owner-key"))
}
