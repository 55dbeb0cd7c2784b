package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/casd/casd/core"
)

// FuzzHeaderJSON guards the X-Casd-File header: whatever the name, the
// value must be printable ASCII (net/http rejects or mangles the rest) and
// must decode back to the same name.
func FuzzHeaderJSON(f *testing.F) {
	for _, s := range []string{
		"", "plain.txt", "Ünïcødé 文件 📚.pdf", "a\"b\\c\n\r\t\x00\x7f", "\xff\xfe", "\U0010FFFF",
		"\u2028\u2029", "<&>", "\ufffd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		in := core.FileInfo{Cid: "bafk", Name: name, MediaType: name, Size: 1}
		v, err := headerJSON(in)
		require.NoError(t, err)
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] >= 0x7f {
				t.Fatalf("byte %#x at %d in %q", v[i], i, v)
			}
		}
		var got core.FileInfo
		require.NoError(t, json.Unmarshal([]byte(v), &got))
		if utf8.ValidString(name) {
			require.Equal(t, in, got)
		} else {
			require.True(t, utf8.ValidString(got.Name))
		}
	})
}

// FuzzReadLines feeds the client's NDJSON decoder garbage: it must not
// panic, and must say what went wrong in a way the CLI can classify.
func FuzzReadLines(f *testing.F) {
	for _, s := range []string{
		"", `{"progress":1}` + "\n" + `{"result":{"cid":"x","size":3}}` + "\n",
		`{"error":{"kind":"busy","message":"m"}}`, `{"error":{}}`, `{"cid":"a"}{"cid":"b"}`,
		"[", `{"progress":"x"}`, `{"result":null}`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := readLines("fuzz", bytes.NewReader(data), func(l *streamLine) error {
			if l.Result != nil {
				var res core.AddResult
				if err := json.Unmarshal(l.Result, &res); err != nil {
					return ErrBadResponse
				}
			}
			return nil
		})
		if err == nil {
			return
		}
		var e *Error
		switch {
		case errors.As(err, &e):
			require.NotEmpty(t, e.Code)
		case errors.Is(err, ErrBadResponse), errors.Is(err, io.ErrUnexpectedEOF):
		default:
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// FuzzReadError decodes any error response into an *Error with a kind.
func FuzzReadError(f *testing.F) {
	f.Add(404, []byte(`{"kind":"not_found","message":"gone"}`))
	f.Add(500, []byte(`{"message":"no kind"}`))
	f.Add(502, []byte("<html>bad gateway</html>"))
	f.Add(422, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		resp := &http.Response{StatusCode: status, Status: http.StatusText(status), Body: io.NopCloser(bytes.NewReader(body))}
		err := readError("fuzz", resp)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.NotEmpty(t, e.Code)
		require.NotEmpty(t, e.Message)
	})
}

func TestKindStatus(t *testing.T) {
	for _, k := range []core.Kind{core.KindBadInput, core.KindNotFound, core.KindIntegrity, core.KindBusy, core.KindOther} {
		require.Equal(t, k, kindOfStatus(statusOf(k)), "round trip of %s", k)
	}
	require.Equal(t, http.StatusInternalServerError, statusOf("from_the_future"))
	require.Equal(t, core.KindBadInput, kindOfStatus(http.StatusMethodNotAllowed))
	require.Equal(t, core.KindOther, kindOfStatus(http.StatusBadGateway))
}

func TestHeaderJSONSurrogates(t *testing.T) {
	v, err := headerJSON("📚é")
	require.NoError(t, err)
	require.Equal(t, `"\ud83d\udcda\u00e9"`, v)
	require.False(t, strings.ContainsFunc(v, func(r rune) bool { return r >= utf8.RuneSelf }))
}
