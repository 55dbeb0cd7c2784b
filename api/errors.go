package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/casd/casd/core"
)

// Sentinel errors of the API.
var (
	// ErrNoDaemon is wrapped by [Dial] and by the client's calls when nothing
	// listens on the socket (no file, or a stale one). The CLI then opens
	// the repo itself.
	ErrNoDaemon = errors.New("api: no daemon running")
	// ErrDaemonRunning is returned by [ListenUnix] when a live daemon
	// already answers on the socket.
	ErrDaemonRunning = errors.New("api: daemon already running")
	// ErrBadResponse is wrapped by the client when the server's answer
	// does not follow the protocol (a missing header, a malformed line, a
	// stream without its final result).
	ErrBadResponse = errors.New("api: bad response from daemon")
)

// Error is an error the server reported. Its message is the server's, word
// for word, and it keeps the server's classification: it implements
// [core.Kinded], so [core.KindOf] returns Code.
//
// It is also the JSON object of error bodies, error lines and the
// X-Casd-Error trailer.
type Error struct {
	// Code is the error's kind as the server classified it. (It is not
	// named Kind because the method of [core.Kinded] is.)
	Code    core.Kind `json:"kind"`
	Message string    `json:"message"`
}

// Error returns the server's message as is.
func (e *Error) Error() string { return e.Message }

// Kind returns the error's kind.
func (e *Error) Kind() core.Kind { return e.Code }

var _ core.Kinded = (*Error)(nil)

// toError converts any error into what goes on the wire.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: core.KindOf(err), Message: err.Error()}
}

// badInput is an error of the request itself, found by the API layer.
func badInput(msg string) *Error {
	return &Error{Code: core.KindBadInput, Message: "api: " + msg}
}

// kindStatus is the one place that maps error kinds to HTTP statuses, both
// ways.
var kindStatus = []struct {
	kind   core.Kind
	status int
}{
	{core.KindBadInput, http.StatusBadRequest},
	{core.KindNotFound, http.StatusNotFound},
	{core.KindIntegrity, http.StatusUnprocessableEntity},
	{core.KindBusy, http.StatusConflict},
	{core.KindOther, http.StatusInternalServerError},
}

// statusOf returns the HTTP status of an error of kind k.
func statusOf(k core.Kind) int {
	for _, ks := range kindStatus {
		if ks.kind == k {
			return ks.status
		}
	}
	return http.StatusInternalServerError
}

// kindOfStatus is the inverse of statusOf, for error bodies that do not
// carry their kind (a proxy, a server of another version).
func kindOfStatus(status int) core.Kind {
	for _, ks := range kindStatus {
		if ks.status == status {
			return ks.kind
		}
	}
	if status >= 400 && status < 500 {
		return core.KindBadInput
	}
	return core.KindOther
}

// headerJSON encodes v as JSON that is a valid header value: json.Marshal
// escapes the control characters but DEL, and DEL and every non-ASCII rune
// become a \uXXXX escape (a surrogate pair above the BMP). Such bytes only
// occur inside JSON strings, so the result is valid JSON that decodes to
// the same value, and stays readable with curl -i.
func headerJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.Grow(len(b))
	const hex = "0123456789abcdef"
	esc := func(r rune) {
		sb.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			sb.WriteByte(hex[(r>>shift)&0xf])
		}
	}
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r < utf8.RuneSelf && r != 0x7f: // DEL is a control character too
			sb.WriteByte(byte(r))
		case r > 0xffff:
			r -= 0x10000
			esc(0xd800 + (r>>10)&0x3ff)
			esc(0xdc00 + r&0x3ff)
		default:
			// json.Marshal replaced invalid UTF-8 with U+FFFD, so
			// RuneError here is that character.
			esc(r)
		}
	}
	return sb.String(), nil
}
