package pb

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

var _ Message = (*PeerList)(nil)

// PeerList carries signed peer records on /cas/peers/1.0: the client's
// list, then the server's. Each record is a marshalled libp2p record
// envelope (record.Envelope) of a peer record (peer.PeerRecord); package
// protocol checks signatures, counts and sizes. Here a record is only
// required not to be empty.
type PeerList struct {
	Records [][]byte
}

// Type implements [Message].
func (*PeerList) Type() Type { return TypePeerList }

// Size implements [Message].
func (m *PeerList) Size() int { return proto.Size(m.toWire()) }

// AppendBody implements [Message]. An empty record is encoded as an empty
// field, which decodes as an error.
func (m *PeerList) AppendBody(b []byte) []byte { return appendWire(b, m.toWire()) }

// UnmarshalBody implements [Message].
func (m *PeerList) UnmarshalBody(b []byte) error {
	var w wire.PeerList
	if err := unmarshalWire(b, &w); err != nil {
		return err
	}
	for i, r := range w.Records {
		if len(r) == 0 {
			return fmt.Errorf("%w: empty peer record %d", ErrMalformed, i)
		}
	}
	*m = PeerList{Records: w.Records}
	return nil
}

func (m *PeerList) toWire() *wire.PeerList { return &wire.PeerList{Records: m.Records} }
