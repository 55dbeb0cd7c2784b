package gossip

import (
	"math/rand/v2"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"

	"github.com/casd/casd/node/internal/peers"
	"github.com/casd/casd/protocol"
)

// sampleBudget bounds the marshalled records of one sample, leaving room
// in a protocol.MaxRequestSize frame for the message's own encoding (a tag
// and a length, at most 4 bytes, per record).
const sampleBudget = protocol.MaxRequestSize - 4*protocol.MaxPeerRecords - 64

// Sample returns the records to send to `to`: self's own signed record,
// then up to SampleSize-1 random others that have a certified record,
// connected peers first, then other known ones; never `to`'s own, never
// more than SampleSize, and none the receiver would refuse (too large, too
// many addresses), since one such record would fail the whole message.
func (g *Gossip) Sample(to peer.ID) []*record.Envelope {
	s := sampler{max: g.cfg.SampleSize, budget: sampleBudget, seen: map[peer.ID]struct{}{to: {}}}
	s.add(g.h.ID(), g.cab.GetPeerRecord(g.h.ID()))
	s.max = len(s.out) + g.cfg.SampleSize - 1 // others: SampleSize-1 at most
	if !s.full() {
		s.addFrom(g, g.h.Network().Peers())
	}
	if !s.full() {
		s.addFrom(g, g.h.Peerstore().PeersWithAddrs())
	}
	return s.out
}

// sampler gathers a sample within its bounds.
type sampler struct {
	max    int
	budget int
	seen   map[peer.ID]struct{}
	out    []*record.Envelope
}

func (s *sampler) full() bool { return len(s.out) >= s.max }

// addFrom adds the certified records of ps, in random order, until full.
func (s *sampler) addFrom(g *Gossip, ps peer.IDSlice) {
	rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	for _, p := range ps {
		if s.full() {
			return
		}
		if _, dup := s.seen[p]; dup {
			continue
		}
		s.add(p, g.cab.GetPeerRecord(p))
	}
}

// add appends p's record env if there is one and it keeps every bound.
func (s *sampler) add(p peer.ID, env *record.Envelope) {
	s.seen[p] = struct{}{}
	if env == nil || s.full() {
		return
	}
	raw, _, err := protocol.EncodePeerRecord(env)
	if err != nil || len(raw) > s.budget {
		log.Debugw("record left out of the sample", "peer", p, "size", len(raw), "err", err)
		return
	}
	s.budget -= len(raw)
	s.out = append(s.out, env)
}

// Merge takes the verified records that from sent: each is consumed into
// the certified address book with GossipAddrTTL; a stale one (a seq older
// than the one held) or one the book refuses is dropped. Each accepted
// peer is noted as learned by gossip, and, while the host has fewer
// connections than LowWater, queued for a dial. Merge never blocks and is
// a no-op after Close.
func (g *Gossip) Merge(from peer.ID, recs []protocol.PeerRecord) {
	if g.ctx.Err() != nil {
		return
	}
	fresh := make([]peer.ID, 0, len(recs))
	for _, r := range recs {
		p := r.Record.PeerID
		if p == g.h.ID() {
			continue
		}
		accepted, err := g.cab.ConsumePeerRecord(r.Envelope, GossipAddrTTL)
		if err != nil {
			log.Debugw("drop gossiped record", "from", from, "peer", p, "err", err)
			continue
		}
		if !accepted {
			log.Debugw("drop stale gossiped record", "from", from, "peer", p, "seq", r.Record.Seq)
			continue
		}
		if g.cfg.Sources != nil {
			g.cfg.Sources.Note(p, peers.SourceGossip)
		}
		fresh = append(fresh, p)
	}
	g.dials.queue(fresh)
}
