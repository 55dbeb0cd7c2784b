package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casd/casd/core"
)

// TestRefArg: a ref comes as an argument, as the one token on stdin (-) or
// in a file (@FILE); anything else there is bad input naming where it was
// read from.
func TestRefArg(t *testing.T) {
	const ref = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	dir := t.TempDir()
	good := filepath.Join(dir, "cap")
	if err := os.WriteFile(good, []byte("  "+ref+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two")
	if err := os.WriteFile(two, []byte(ref+" "+ref+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, arg, stdin, want, wantErr string
	}{
		{name: "argument", arg: ref, want: ref},
		{name: "stdin", arg: "-", stdin: ref + "\n", want: ref},
		{name: "file", arg: "@" + good, want: ref},
		{name: "empty stdin", arg: "-", stdin: "\n", wantErr: "from stdin: 0 words"},
		{name: "two words", arg: "@" + two, wantErr: ": 2 words"},
		{name: "oversize", arg: "-", stdin: strings.Repeat("a", maxRefArg+1), wantErr: "more than 4096 bytes"},
		{name: "missing file", arg: "@" + filepath.Join(dir, "nope"), wantErr: "read the CID or capability from"},
		{name: "no file name", arg: "@", wantErr: "no file named after @"},
		{name: "bad CID on stdin", arg: "-", stdin: "bafkqaaa\n", wantErr: "CIDv1 raw sha2-256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := refArg(tt.arg, strings.NewReader(tt.stdin))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("refArg(%q) = %q, %v; want an error with %q", tt.arg, got, err, tt.wantErr)
				}
				var k core.Kinded
				if !errors.As(err, &k) || k.Kind() != core.KindBadInput {
					t.Fatalf("refArg(%q): %v is not bad input", tt.arg, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("refArg(%q) = %q, %v; want %q", tt.arg, got, err, tt.want)
			}
		})
	}
}
