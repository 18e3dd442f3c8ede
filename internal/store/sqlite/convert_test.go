package sqlite

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkPlainStrings holds plainStrings to what encoding/json decodes: when it takes src, the
// same strings; otherwise it must leave src to encoding/json.
func checkPlainStrings(t *testing.T, src string) (ok bool) {
	t.Helper()
	got, ok := plainStrings([]byte(src))
	if !ok {
		return false
	}
	var want []string
	if err := json.Unmarshal([]byte(src), &want); err != nil {
		t.Fatalf("plainStrings took %q, which encoding/json refuses: %v", src, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("plainStrings(%q) (-encoding/json +plainStrings):\n%s", src, diff)
	}
	return true
}

func TestPlainStrings(t *testing.T) {
	t.Parallel()
	for _, v := range [][]string{{"ann@example.com"}, {"a", "b", "c"}, {""}, {"", ""}, {"a", ""},
		{"Åsa åsa@exämple.com"}, {"Ann <ann@example.com>"}, {"bench", "orders"}, {","}, {"\",\""}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !checkPlainStrings(t, string(b)) && !bytes.ContainsRune(b, '\\') {
			t.Errorf("plainStrings refused %s, which json.Marshal wrote without escapes", b)
		}
	}
	// Left to encoding/json: escapes (json.Marshal writes "<" as \u003c), white space, other
	// types, malformed input.
	for _, src := range []string{`[]`, `["a\"b"]`, `["Ann \u003cann@example.com\u003e"]`, `["a", "b"]`,
		` ["a"]`, `["a",]`, `["a""b"]`, `["a"b"]`, `["a","b"`, `"a"`, `[1]`, `["a",1]`, `null`, "[\"\t\"]",
		"[\"\xff\"]", `["",""`} {
		if checkPlainStrings(t, src) {
			t.Errorf("plainStrings took %q", src)
		}
	}
}

func FuzzPlainStrings(f *testing.F) {
	for _, s := range []string{`["a","b"]`, `[""]`, `["a\"b"]`, `[","]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) { checkPlainStrings(t, src) })
}

// BenchmarkDecodeStrings compares the two ways a claim decodes a one-address list.
func BenchmarkDecodeStrings(b *testing.B) {
	src := []byte(`["t12345@example.com"]`)
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var v []string
			if err := json.Unmarshal(src, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plainStrings", func(b *testing.B) {
		for b.Loop() {
			if _, ok := plainStrings(src); !ok {
				b.Fatal("refused")
			}
		}
	})
}
