package pb_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/casd/casd/protocol/pb/internal/wire"
)

// TestGeneratedUpToDate catches a cas.proto edited without `make proto`,
// and a docs/wire.md schema that no longer matches cas.proto: it compares
// the messages, fields (label, type, name, number) and enum values written
// in both files with the descriptor compiled into internal/wire.
func TestGeneratedUpToDate(t *testing.T) {
	generated := describe(wire.File_cas_proto)
	if got := parseSchema(t, "cas.proto"); !slices.Equal(got, generated) {
		t.Errorf("cas.proto and internal/wire/cas.pb.go differ; run make proto\ncas.proto:\n  %s\ngenerated:\n  %s",
			strings.Join(got, "\n  "), strings.Join(generated, "\n  "))
	}
	// docs/wire.md shows the messages, not the enum (it has a table).
	var messages []string
	for _, s := range generated {
		if !strings.HasPrefix(s, "enum ") {
			messages = append(messages, s)
		}
	}
	if got := parseSchema(t, "../../docs/wire.md"); !slices.Equal(got, messages) {
		t.Errorf("docs/wire.md and cas.proto differ\nwire.md:\n  %s\ncas.proto:\n  %s",
			strings.Join(got, "\n  "), strings.Join(messages, "\n  "))
	}
}

// describe lists the schema of f, one line per message, field, enum and
// enum value, sorted.
func describe(f protoreflect.FileDescriptor) []string {
	var out []string
	for i := range f.Enums().Len() {
		e := f.Enums().Get(i)
		out = append(out, "enum "+string(e.Name()))
		for j := range e.Values().Len() {
			v := e.Values().Get(j)
			out = append(out, "enum "+string(e.Name())+" "+string(v.Name())+" = "+itoa(int(v.Number())))
		}
	}
	for i := range f.Messages().Len() {
		m := f.Messages().Get(i)
		out = append(out, "message "+string(m.Name()))
		for j := range m.Fields().Len() {
			fd := m.Fields().Get(j)
			label := ""
			switch {
			case fd.HasOptionalKeyword():
				label = "optional "
			case fd.Cardinality() == protoreflect.Repeated:
				label = "repeated "
			}
			out = append(out, "message "+string(m.Name())+" "+label+fd.Kind().String()+" "+
				string(fd.Name())+" = "+itoa(int(fd.Number())))
		}
	}
	slices.Sort(out)
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

var (
	reBlock = regexp.MustCompile(`^\s*(message|enum) (\w+) \{(\})?`)
	reField = regexp.MustCompile(`^\s*((?:optional\s+|repeated\s+)?\w+\s+\w+)\s*=\s*(\d+);`)
	reValue = regexp.MustCompile(`^\s*(\w+)\s*=\s*(\d+);`)
)

// parseSchema reads the message and enum definitions in a .proto file or
// in the indented schema blocks of a Markdown file, in the form of
// describe. It knows the subset of proto3 that cas.proto uses.
func parseSchema(tb testing.TB, path string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	kind, name := "", ""
	for line := range strings.Lines(string(b)) {
		line, _, _ = strings.Cut(line, "//")
		if m := reBlock.FindStringSubmatch(line); m != nil {
			out = append(out, m[1]+" "+m[2])
			kind, name = m[1], m[2]
			if m[3] != "" {
				kind = ""
			}
			continue
		}
		switch {
		case kind == "":
		case strings.TrimSpace(line) == "}":
			kind = ""
		case kind == "message":
			if m := reField.FindStringSubmatch(line); m != nil {
				out = append(out, "message "+name+" "+strings.Join(strings.Fields(m[1]), " ")+" = "+m[2])
			}
		case kind == "enum":
			if m := reValue.FindStringSubmatch(line); m != nil {
				out = append(out, "enum "+name+" "+m[1]+" = "+m[2])
			}
		}
	}
	slices.Sort(out)
	return out
}
