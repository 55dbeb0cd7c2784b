package replicate

import (
	"io"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// placementOrder orders the candidates for a root of replication goal
// goal, given closest first by XOR distance, so that peer IDs ground near
// the root cannot take every replica: the first goal/2 are the
// XOR-closest, the others follow in random order (read from rnd), those
// that passed a storage challenge before (proven) ahead of the rest.
// Grinding an ID costs an attacker nothing, a random slot it can only
// win in proportion to the peers it runs, and a preferred one only by
// having held files and proved it. Placement tries the order goal at a
// time, so the first goal entries are the placement when all accept.
func placementOrder(closest []peer.ID, goal int, proven func(peer.ID) bool, rnd io.Reader) ([]peer.ID, error) {
	nx := min(goal/2, len(closest))
	out := slices.Clone(closest[:nx])
	var good, other []peer.ID
	for _, p := range closest[nx:] {
		if proven(p) {
			good = append(good, p)
		} else {
			other = append(other, p)
		}
	}
	for _, ps := range [][]peer.ID{good, other} {
		if err := shuffle(rnd, ps); err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// shuffle permutes ps uniformly (Fisher-Yates) with randomness from rnd.
func shuffle(rnd io.Reader, ps []peer.ID) error {
	for i := len(ps) - 1; i > 0; i-- {
		j, err := randIntn(rnd, i+1)
		if err != nil {
			return err
		}
		ps[i], ps[j] = ps[j], ps[i]
	}
	return nil
}
