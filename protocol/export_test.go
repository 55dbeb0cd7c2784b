package protocol

import "time"

// TreeWaiting reports how many tree challenges wait for a proof slot on s.
func TreeWaiting(s *Service) int { return int(s.treeWaiting.Load()) }

// WithTreeProofBound sets the time bound of tree proofs: grace plus the
// bytes read at rate bytes per second (defaults 30 s, 4 MiB/s).
func WithTreeProofBound(grace time.Duration, rate float64) Option {
	return func(c *config) { c.tree = treeBound{grace: grace, rate: rate} }
}

// WithPeersTimeout sets the bound of a served peer exchange (default
// [PeersTimeout]).
func WithPeersTimeout(d time.Duration) Option {
	return func(c *config) { c.peersTimeout = d }
}
