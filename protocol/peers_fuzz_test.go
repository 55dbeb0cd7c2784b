package protocol_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/casd/casd/protocol"
	"github.com/casd/casd/protocol/pb"
)

// FuzzPeerList decodes a frame's envelope and, if it is a PeerList, checks
// its records: neither ever panics, a refused list is a peer fault, and
// what DecodePeerRecords accepts re-encodes into a list that decodes to the
// same records.
func FuzzPeerList(f *testing.F) {
	self := fixedIdentity(f, 1)
	a, b := fixedIdentity(f, 2), fixedIdentity(f, 3)
	good := [][]byte{marshalEnv(f, a.record(f, 1, 2)), marshalEnv(f, b.record(f, 9, 1))}
	tampered := bytes.Clone(good[0])
	tampered[len(tampered)-1] ^= 1
	for _, recs := range [][][]byte{
		good,
		nil,
		{marshalEnv(f, self.record(f, 1, 1)), good[1]},
		{tampered},
		{marshalEnv(f, seal(f, a.priv, b.id, 1, testAddrs(f, 4000, 1)))},
		{good[0], good[0]},
		{[]byte("junk")},
	} {
		f.Add(pb.Marshal(&pb.PeerList{Records: recs}))
	}
	for _, bad := range badLists(f, self.id) {
		f.Add(pb.Marshal(&pb.PeerList{Records: bad.records}))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := pb.Unmarshal(body)
		if err != nil {
			return
		}
		list, ok := m.(*pb.PeerList)
		if !ok {
			return
		}
		recs, err := protocol.DecodePeerRecords(list.Records, self.id)
		if err != nil {
			if !protocol.IsPeerFault(err) {
				t.Fatalf("refused list, not a peer fault: %v", err)
			}
			return
		}
		var again pb.PeerList
		for _, r := range recs {
			if r.Record.PeerID == self.id {
				t.Fatal("self's record accepted")
			}
			again.Records = append(again.Records, marshalEnv(t, r.Envelope))
		}
		m2, err := pb.Unmarshal(pb.Marshal(&again))
		if err != nil {
			t.Fatalf("re-decode list: %v", err)
		}
		recs2, err := protocol.DecodePeerRecords(m2.(*pb.PeerList).Records, self.id)
		if err != nil {
			t.Fatalf("re-decode records: %v", err)
		}
		if !slices.EqualFunc(recs, recs2, func(x, y protocol.PeerRecord) bool {
			return x.Envelope.Equal(y.Envelope) && x.Record.Equal(y.Record)
		}) {
			t.Fatalf("records changed by re-encoding: %v, then %v", idsOf(recs), idsOf(recs2))
		}
	})
}

// fixedIdentity returns an identity whose key derives from seed alone, so
// that fuzz seeds stay valid from run to run.
func fixedIdentity(tb testing.TB, seed byte) identity {
	tb.Helper()
	return identityFrom(tb, bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
}

// BenchmarkDecodePeerRecords measures the check of one PeerList of 16
// records of 4 addresses (a gossip round's default sample): mostly the 16
// Ed25519 signature verifications.
func BenchmarkDecodePeerRecords(b *testing.B) {
	var raw [][]byte
	for _, e := range realisticRecords(b, 16, 0) {
		raw = append(raw, marshalEnv(b, e))
	}
	self := fixedIdentity(b, 1).id
	b.ReportAllocs()
	for b.Loop() {
		recs, err := protocol.DecodePeerRecords(raw, self)
		if err != nil || len(recs) != 16 {
			b.Fatalf("decoded %d records: %v", len(recs), err)
		}
	}
}
