package core

import (
	"errors"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/config"
	"github.com/casd/casd/dag"
)

// Kind classifies an error by what the user can do about it. The API sends
// it along with the message and the CLI turns it into an exit code, so an
// error means the same thing whether the daemon runs or not.
type Kind string

// The kinds of errors.
const (
	KindOther     Kind = "other"     // anything else
	KindBadInput  Kind = "bad_input" // the request itself is wrong
	KindNotFound  Kind = "not_found" // no such block or file here or on the network
	KindIntegrity Kind = "integrity" // data failed verification or authentication
	KindBusy      Kind = "busy"      // the repo is locked, missing or of another version
)

// Kinded is implemented by errors that carry their [Kind] (such as the
// API client's errors).
type Kinded interface{ Kind() Kind }

// KindOf classifies err.
func KindOf(err error) Kind {
	var k Kinded
	if errors.As(err, &k) {
		return k.Kind()
	}
	switch {
	case isAny(err, ErrBadInput, dag.ErrBadRef, dag.ErrBadCapability, dag.ErrBadName, config.ErrUnknownKey, blockstore.ErrTooLarge, blockstore.ErrBadCid):
		return KindBadInput
	case isAny(err, blockstore.ErrNotFound, ErrNotMine):
		return KindNotFound
	case isAny(err, dag.ErrUnauthenticated, dag.ErrMalformed, dag.ErrNotFile, dag.ErrNeedCapability, blockstore.ErrCorrupt, ErrNotOwned):
		return KindIntegrity
	case isAny(err, config.ErrRepoLocked, config.ErrNoRepo, config.ErrNewerRepo, blockstore.ErrLocked, ErrOffline):
		return KindBusy
	}
	return KindOther
}

func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
