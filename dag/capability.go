package dag

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/casd/casd/crypt"
)

// CapabilityPrefix starts every capability token; the digit is the format
// version.
const CapabilityPrefix = "casd1"

// ErrBadCapability is returned for a token that is not a well-formed
// capability (mistyped, truncated, or of another format).
var ErrBadCapability = errors.New("dag: not a valid capability")

const capChecksumSize = 4

var capEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Capability is what it takes to read a file: its root CID and file key.
// Its string form is one copy-pasteable token of letters and digits.
type Capability struct {
	Root cid.Cid
	Key  crypt.Key
}

// String returns the token: the prefix, then base32 of the root CID's
// bytes, the key, and a 4-byte checksum that catches copy mistakes.
func (c Capability) String() string {
	payload := append(c.Root.Bytes(), c.Key[:]...)
	payload = append(payload, capChecksum(payload)...)
	return CapabilityPrefix + capEncoding.EncodeToString(payload)
}

func capChecksum(payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte("casd/v1/capability\x00"))
	h.Write(payload)
	return h.Sum(nil)[:capChecksumSize]
}

// ParseCapability parses a token made by [Capability.String].
func ParseCapability(s string) (Capability, error) {
	var c Capability
	if !strings.HasPrefix(s, CapabilityPrefix) {
		return c, fmt.Errorf("%w: missing prefix %q", ErrBadCapability, CapabilityPrefix)
	}
	raw, err := capEncoding.DecodeString(s[len(CapabilityPrefix):])
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrBadCapability, err)
	}
	if len(raw) < crypt.KeySize+capChecksumSize+2 {
		return c, fmt.Errorf("%w: too short", ErrBadCapability)
	}
	payload, sum := raw[:len(raw)-capChecksumSize], raw[len(raw)-capChecksumSize:]
	if !bytes.Equal(capChecksum(payload), sum) {
		return c, fmt.Errorf("%w: checksum mismatch (mistyped or truncated?)", ErrBadCapability)
	}
	n, root, err := cid.CidFromBytes(payload)
	if err != nil {
		return c, fmt.Errorf("%w: root: %v", ErrBadCapability, err)
	}
	if len(payload)-n != crypt.KeySize {
		return c, fmt.Errorf("%w: key of %d bytes", ErrBadCapability, len(payload)-n)
	}
	c.Root = root
	copy(c.Key[:], payload[n:])
	return c, nil
}

// ErrBadRef is returned by [ParseRef] for a string that is neither a CID
// nor a capability.
var ErrBadRef = errors.New("dag: not a CID or a capability")

// Ref is what a user names a file by: a bare CID, or a capability.
type Ref struct {
	Root cid.Cid
	Cap  *Capability // nil for a bare CID
}

// ParseRef parses a capability token or a CID.
func ParseRef(s string) (Ref, error) {
	if strings.HasPrefix(s, CapabilityPrefix) {
		c, err := ParseCapability(s)
		if err != nil {
			return Ref{}, err
		}
		return Ref{Root: c.Root, Cap: &c}, nil
	}
	c, err := cid.Decode(s)
	if err != nil {
		return Ref{}, fmt.Errorf("%w: %q: %v", ErrBadRef, s, err)
	}
	return Ref{Root: c}, nil
}
