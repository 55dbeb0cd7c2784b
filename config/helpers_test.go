package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// These small helpers stand in for testify/require, whose yaml dependency
// (go.yaml.in/yaml/v3) has no go.sum entry in this module.

func noErr(tb testing.TB, err error, msg ...any) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("unexpected error: %v %v", err, msg)
	}
}

func errContains(tb testing.TB, err error, subs ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("expected an error containing %q, got nil", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			tb.Fatalf("error %q does not contain %q", err, s)
		}
	}
}

func errIs(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("error %v does not wrap %v", err, target)
	}
}

func equal(tb testing.TB, want, got any, msg ...any) {
	tb.Helper()
	if !reflect.DeepEqual(want, got) {
		tb.Fatalf("not equal %v\nwant: %#v\n got: %#v", msg, want, got)
	}
}

func isTrue(tb testing.TB, ok bool, format string, args ...any) {
	tb.Helper()
	if !ok {
		tb.Fatalf(format, args...)
	}
}

func jsonEq(tb testing.TB, want, got string) {
	tb.Helper()
	var w, g bytes.Buffer
	if err := json.Compact(&w, []byte(want)); err != nil {
		tb.Fatalf("bad want JSON %q: %v", want, err)
	}
	if err := json.Compact(&g, []byte(got)); err != nil {
		tb.Fatalf("bad got JSON %q: %v", got, err)
	}
	if w.String() != g.String() {
		tb.Fatalf("JSON differs\nwant: %s\n got: %s", w.String(), g.String())
	}
}
