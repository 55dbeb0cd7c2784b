package blockstoretest

import (
	"crypto/sha256"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// NamedCid is a CID with a name for a test case.
type NamedCid struct {
	Name string
	Cid  cid.Cid
}

// BadCids returns CIDs of data that [blockstore.CheckCid] must refuse, for
// tests that mount the attack: each names data under its own hash function
// wherever go-multihash can compute it, so a check that only rehashed data
// with the CID's own function would let it pass. The cases are CIDv0,
// CIDv1 dag-pb, identity, sha1, sha2-256 truncated to 1 and to 20 bytes,
// sha2-512 and blake3 (whose digest is sha2-256's when blake3 is not
// linked in: the rule refuses the code, whatever the digest).
func BadCids(data []byte) []NamedCid {
	digest := sha256.Sum256(data)
	full := must(mh.Encode(digest[:], mh.SHA2_256))
	blake3, err := mh.Sum(data, mh.BLAKE3, -1)
	if err != nil {
		blake3 = must(mh.Encode(digest[:], mh.BLAKE3))
	}
	return []NamedCid{
		{"CIDv0", cid.NewCidV0(full)},
		{"CIDv1 dag-pb", cid.NewCidV1(cid.DagProtobuf, full)},
		{"identity", cid.NewCidV1(cid.Raw, must(mh.Sum(data, mh.IDENTITY, -1)))},
		{"sha1", cid.NewCidV1(cid.Raw, must(mh.Sum(data, mh.SHA1, -1)))},
		{"sha2-256 of 1 byte", cid.NewCidV1(cid.Raw, must(mh.Sum(data, mh.SHA2_256, 1)))},
		{"sha2-256 of 20 bytes", cid.NewCidV1(cid.Raw, must(mh.Sum(data, mh.SHA2_256, 20)))},
		{"sha2-512", cid.NewCidV1(cid.Raw, must(mh.Sum(data, mh.SHA2_512, -1)))},
		{"blake3", cid.NewCidV1(cid.Raw, blake3)},
	}
}

func must(h mh.Multihash, err error) mh.Multihash {
	if err != nil {
		panic(fmt.Sprintf("blockstoretest: multihash: %v", err))
	}
	return h
}
