package dag

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/casd/casd/crypt"
)

// TestManifestHeadBounds: a manifest block at the greatest height and with
// the most links the format allows parses; one more of either is
// malformed.
func TestManifestHeadBounds(t *testing.T) {
	sealed := bytes.Repeat([]byte{7}, crypt.Overhead)
	head := func(height int, links []cid.Cid) []byte {
		return appendManifestHead(nil, FormatVersion, KindNode, height, links)
	}
	if _, err := parseManifestBlock(append(head(maxHeight, nil), sealed...)); err != nil {
		t.Fatalf("height %d: %v", maxHeight, err)
	}
	if _, err := parseManifestBlock(append(head(maxHeight+1, nil), sealed...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("height %d: %v, want ErrMalformed", maxHeight+1, err)
	}

	link := func(i int) cid.Cid {
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
		if err != nil {
			t.Fatal(err)
		}
		return cid.NewCidV1(cid.Raw, mh)
	}
	links := make([]cid.Cid, MaxLinks+1)
	for i := range links {
		links[i] = link(i)
	}
	m, err := parseManifestBlock(append(head(1, links[:MaxLinks]), sealed...))
	if err != nil || len(m.links) != MaxLinks {
		t.Fatalf("%d links: %v", MaxLinks, err)
	}
	if _, err := parseManifestBlock(append(head(1, links), sealed...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d links: %v, want ErrMalformed", MaxLinks+1, err)
	}
	if _, err := parseManifestBlock(head(1, nil)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no sealed body: %v, want ErrMalformed", err)
	}
}

// TestSumEntriesBound: sizes may add up to exactly the largest file size
// (2^63-1); one byte more is malformed.
func TestSumEntriesBound(t *testing.T) {
	sum, err := sumEntries([]entry{{size: math.MaxInt64 - 1}, {size: 1}})
	if err != nil || sum != math.MaxInt64 {
		t.Fatalf("sumEntries to 2^63-1 = %d, %v", sum, err)
	}
	if _, err := sumEntries([]entry{{size: math.MaxInt64}, {size: 1}}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("sumEntries past 2^63-1: %v, want ErrMalformed", err)
	}
	if _, err := sumEntries([]entry{{size: math.MaxUint64}, {size: 2}}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("sumEntries wrapping around: %v, want ErrMalformed", err)
	}
}
