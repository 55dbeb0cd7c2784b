package crypt

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
)

// keyFilePEMType is the PEM block type of an exported key file.
const keyFilePEMType = "CASD KEY FILE"

// keyFileVersion is the format version of the key file's binary body.
const keyFileVersion = 1

// ErrBadKeyFile is returned for a key file that cannot be parsed.
var ErrBadKeyFile = errors.New("crypt: not a casd key file")

// KDFParams are the Argon2id cost parameters of a key file.
type KDFParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultKDF is memory-hard enough to make offline guessing expensive
// (64 MiB, 3 passes) and still opens in well under a second here.
var DefaultKDF = KDFParams{Time: 3, Memory: 64 * 1024, Threads: 2}

// Secrets are what a key file carries: everything needed to open one's own
// files from their CIDs alone.
type Secrets struct {
	Master      Key
	Convergence Key
}

// header layout: version(1) time(4) memory(4) threads(1) salt(16) nonce(12)
const (
	saltSize   = 16
	headerSize = 1 + 4 + 4 + 1 + saltSize + NonceSize
)

// SealKeyFile seals s under passphrase and returns the PEM-armored key file.
func SealKeyFile(s Secrets, passphrase []byte, p KDFParams) ([]byte, error) {
	return sealKeyFile(s, passphrase, p, rand.Reader)
}

// sealKeyFile is [SealKeyFile] with the salt and the nonce read from random,
// so that a test can pin the output to a known answer.
func sealKeyFile(s Secrets, passphrase []byte, p KDFParams, random io.Reader) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("seal key file: empty passphrase")
	}
	hdr := make([]byte, headerSize)
	hdr[0] = keyFileVersion
	binary.BigEndian.PutUint32(hdr[1:], p.Time)
	binary.BigEndian.PutUint32(hdr[5:], p.Memory)
	hdr[9] = p.Threads
	if _, err := io.ReadFull(random, hdr[10:]); err != nil { // salt and nonce
		return nil, fmt.Errorf("seal key file: random salt: %w", err)
	}
	k := kdf(passphrase, hdr[10:10+saltSize], p)
	pt := append(append(make([]byte, 0, 2*KeySize), s.Master[:]...), s.Convergence[:]...)
	body := NewAEAD(&k).Seal(hdr, hdr[10+saltSize:headerSize], pt, hdr)
	return pem.EncodeToMemory(&pem.Block{Type: keyFilePEMType, Bytes: body}), nil
}

// OpenKeyFile opens a key file made by [SealKeyFile]. A wrong passphrase
// gives [ErrUnauthenticated].
func OpenKeyFile(file, passphrase []byte) (Secrets, error) {
	var s Secrets
	blk, rest := pem.Decode(file)
	if blk == nil || blk.Type != keyFilePEMType || len(bytes.TrimSpace(rest)) != 0 {
		return s, ErrBadKeyFile
	}
	body := blk.Bytes
	if len(body) != headerSize+2*KeySize+Overhead || body[0] != keyFileVersion {
		return s, fmt.Errorf("%w: unsupported version or size", ErrBadKeyFile)
	}
	hdr := body[:headerSize]
	p := KDFParams{
		Time:    binary.BigEndian.Uint32(hdr[1:]),
		Memory:  binary.BigEndian.Uint32(hdr[5:]),
		Threads: hdr[9],
	}
	if p.Time == 0 || p.Time > 16 || p.Memory < 8 || p.Memory > 1<<20 || p.Threads == 0 {
		return s, fmt.Errorf("%w: implausible KDF parameters", ErrBadKeyFile)
	}
	k := kdf(passphrase, hdr[10:10+saltSize], p)
	pt, err := NewAEAD(&k).Open(nil, hdr[10+saltSize:], body[headerSize:], hdr)
	if err != nil {
		return s, fmt.Errorf("open key file: %w", ErrUnauthenticated)
	}
	copy(s.Master[:], pt[:KeySize])
	copy(s.Convergence[:], pt[KeySize:])
	return s, nil
}

func kdf(passphrase, salt []byte, p KDFParams) Key {
	var k Key
	copy(k[:], argon2.IDKey(passphrase, salt, p.Time, p.Memory, p.Threads, KeySize))
	return k
}
