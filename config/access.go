package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Get returns the JSON encoding of the value at key, a dotted path of field
// names such as "Replication.Factor" or "Swarm.ConnMgr" (case-sensitive, as
// in the file). An unknown key is an error wrapping [ErrUnknownKey].
func (c *Config) Get(key string) (json.RawMessage, error) {
	v, err := lookup(reflect.ValueOf(c).Elem(), key)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return nil, fmt.Errorf("config: get %s: %w", key, err)
	}
	return b, nil
}

// Set returns a new, validated config with the value at key replaced by
// jsonValue; c is left untouched. An object value replaces the whole
// object: fields it omits become zero, and unknown fields are rejected.
//
// Errors: an unknown key wraps [ErrUnknownKey]; a value that is not JSON,
// is null, or has the wrong type names the key and the expected type; a
// result that fails [Config.Validate] returns that error. Identity.PeerID is
// read-only: it is derived from the identity key.
func (c *Config) Set(key, jsonValue string) (*Config, error) {
	n := c.Clone()
	field, err := lookup(reflect.ValueOf(n).Elem(), key)
	if err != nil {
		return nil, err
	}
	if key == "Identity" || strings.HasPrefix(key, "Identity.") {
		return nil, fmt.Errorf("config: %s: read-only (derived from keys/identity)", key)
	}
	want := describeType(field.Type())
	raw := []byte(strings.TrimSpace(jsonValue))
	if !json.Valid(raw) {
		return nil, fmt.Errorf("config: %s: value %s is not JSON (expected %s; quote strings: '\"...\"')", key, quoteValue(jsonValue), want)
	}
	if bytes.Equal(raw, []byte("null")) {
		return nil, fmt.Errorf("config: %s: null is not allowed (expected %s)", key, want)
	}
	ptr := reflect.New(field.Type())
	if err := decodeStrict(raw, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("config: %s: expected %s: %s", key, want, oneLine(err.Error()))
	}
	field.Set(ptr.Elem())
	n.normalize()
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return n, nil
}

// lookup walks a dotted key through the struct fields of v. Leaves are the
// fields that are not structs, and structs that decode themselves
// ([Duration]).
func lookup(v reflect.Value, key string) (reflect.Value, error) {
	if key == "" {
		return reflect.Value{}, fmt.Errorf("%w: empty key", ErrUnknownKey)
	}
	for part := range strings.SplitSeq(key, ".") {
		if !isObject(v.Type()) {
			return reflect.Value{}, fmt.Errorf("%w: %q", ErrUnknownKey, key)
		}
		f, ok := v.Type().FieldByName(part)
		if !ok || !f.IsExported() || len(f.Index) != 1 {
			return reflect.Value{}, fmt.Errorf("%w: %q", ErrUnknownKey, key)
		}
		v = v.Field(f.Index[0])
	}
	return v, nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// isObject reports whether t is encoded as a JSON object of its fields.
func isObject(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshalerType)
}

// describeType names the JSON type expected for a Go type, for errors.
func describeType(t reflect.Type) string {
	if t == reflect.TypeFor[Duration]() {
		return `a duration string like "30s"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct:
		names := make([]string, 0, t.NumField())
		for f := range t.Fields() {
			names = append(names, f.Name)
		}
		return "an object with fields " + strings.Join(names, ", ")
	default:
		return t.String()
	}
}

// quoteValue quotes a user-supplied value for an error message, bounded.
func quoteValue(s string) string {
	return fmt.Sprintf("%q", truncate(s))
}

// oneLine folds a multi-line message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
