package pb_test

import (
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/casd/casd/protocol/pb"
)

// TestGolden pins the encoding documented in docs/wire.md ("Golden
// example"): any change to it fails here.
func TestGolden(t *testing.T) {
	c := testCid(t, "foo")
	if got, want := c.String(), goldenCid; got != want {
		t.Fatalf("cid %s, docs say %s", got, want)
	}
	env := pb.Marshal(&pb.Missing{Cid: c})
	frame := append(binary.AppendUvarint(nil, uint64(len(env))), env...)
	const want = "2a" + "0803" + "1226" + "0a24" +
		"01551220" + "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	if got := hex.EncodeToString(frame); got != want {
		t.Fatalf("frame\n got %s\nwant %s", got, want)
	}
}

const goldenCid = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"

// TestGoldenPeerList pins the PeerList encoding of docs/wire.md ("Golden
// example"): records are opaque bytes here, each a field 1.
func TestGoldenPeerList(t *testing.T) {
	env := pb.Marshal(&pb.PeerList{Records: [][]byte{{0x01, 0x02}, {0x03}}})
	frame := append(binary.AppendUvarint(nil, uint64(len(env))), env...)
	const want = "0b" + "080e" + "1207" + "0a020102" + "0a0103"
	if got := hex.EncodeToString(frame); got != want {
		t.Fatalf("frame\n got %s\nwant %s", got, want)
	}
}
