package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

// Exit codes of casd, listed in the root command's help.
const (
	exitOK        = 0
	exitOther     = 1
	exitBadInput  = 2 // usage or bad input
	exitNotFound  = 3
	exitIntegrity = 4 // integrity or authentication failure
	exitBusy      = 5 // repo locked, missing or newer; daemon needed
)

// exitCode maps err to the process exit code. This is the one place where
// errors become exit codes: every error is classified by [core.KindOf],
// whether it came from the offline node, the daemon's API or the CLI itself
// (which marks its own errors with [kindError]).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	switch core.KindOf(err) {
	case core.KindBadInput:
		return exitBadInput
	case core.KindNotFound:
		return exitNotFound
	case core.KindIntegrity:
		return exitIntegrity
	case core.KindBusy:
		return exitBusy
	default:
		return exitOther
	}
}

// kindError gives err a [core.Kind] without changing its message.
type kindError struct {
	kind core.Kind
	err  error
}

var _ core.Kinded = (*kindError)(nil)

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() error   { return e.err }
func (e *kindError) Kind() core.Kind { return e.kind }

// badInput marks err as the user's bad input (exit 2).
func badInput(err error) error { return &kindError{core.KindBadInput, err} }

// integrityError marks err as an integrity or authentication failure (exit 4).
func integrityError(err error) error { return &kindError{core.KindIntegrity, err} }

// usageError marks err, raised while parsing the command line of cmd, as a
// usage error (exit 2) and points at the command's help.
func usageError(cmd *cobra.Command, err error) error {
	path := "casd"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	return badInput(fmt.Errorf("%s: %w (see '%s --help')", path, err, path))
}

// errorLine renders err as a single line: errors.Join and multi-line
// messages are collapsed with "; ".
func errorLine(err error) string {
	lines := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	lines = slices.DeleteFunc(lines, func(l string) bool { return l == "" })
	if len(lines) == 0 {
		return "unknown error"
	}
	return strings.Join(lines, "; ")
}
