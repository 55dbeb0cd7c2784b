package protocol

// TreeWaiting reports how many tree challenges wait for a proof slot on s.
func TreeWaiting(s *Service) int { return int(s.treeWaiting.Load()) }
