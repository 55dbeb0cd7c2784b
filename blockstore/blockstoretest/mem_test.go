package blockstoretest_test

import (
	"testing"

	"github.com/casd/casd/blockstore/blockstoretest"
)

func TestMem(t *testing.T) {
	blockstoretest.Verify(t, func(testing.TB) blockstoretest.Blockstore { return new(blockstoretest.Mem) })
}

func TestLinks(t *testing.T) {
	leaf := blockstoretest.NewBlock([]byte("leaf"))
	other := blockstoretest.NewBlock([]byte("other"))
	tests := []struct {
		name    string
		data    []byte
		want    int
		wantErr bool
	}{
		{"leaf", leaf.Data, 0, false},
		{"node", blockstoretest.Node(leaf.Cid, other.Cid).Data, 2, false},
		{"empty node", blockstoretest.Node().Data, 0, false},
		{"bad node", append(blockstoretest.Node(leaf.Cid).Data, 0xff), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := blockstoretest.Links(leaf.Cid, tt.data)
			if (err != nil) != tt.wantErr || len(got) != tt.want {
				t.Fatalf("Links = %v, %v; want %d links, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
