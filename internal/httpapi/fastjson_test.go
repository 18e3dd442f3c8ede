package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// checkSplit fails when splitBatch accepts body but disagrees with encoding/json on it.
func checkSplit(t *testing.T, body string) (ok bool) {
	t.Helper()
	items, ok := splitBatch([]byte(body))
	if !ok {
		return false
	}
	valid := true
	for _, it := range items {
		valid = valid && json.Valid(it)
	}
	slow, err := decodeBatch([]byte(body))
	if !valid {
		// sendBatch falls back to decodeBatch, which must refuse the body.
		if err == nil {
			t.Errorf("%q: an item split off is not valid JSON, yet encoding/json accepts the body", body)
		}
		return true
	}
	if err != nil {
		t.Errorf("%q: split into %d valid items, but encoding/json refuses it: %v", body, len(items), err)
		return true
	}
	if len(slow) != len(items) {
		t.Errorf("%q: %d items, encoding/json finds %d", body, len(items), len(slow))
		return true
	}
	for i := range items {
		if string(items[i]) != string(slow[i]) {
			t.Errorf("%q: item %d is %s, encoding/json says %s", body, i, items[i], slow[i])
		}
	}
	return true
}

func TestSplitBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"messages":[{"to":["a@example.com"]}]}`, true},
		{" \n{ \"messages\" :\t[ {\"a\":1} ,{\"b\":[1,{\"c\":\"}\"}]} ] }\r\n", true},
		{`{"messages":[]}`, true},
		{`{"messages":[{"s":"quote \" and backslash \\"},{"s":"\\\\\""}]}`, true},
		{`{"messages":[{"s":"\u0022}"}]}`, true},
		{`{"messages":[{"a":}]}`, true}, // split, then refused by decodeItem and the fallback
		// Anything else is left to encoding/json.
		{`{"messages":null}`, false},
		{`{"messages":[1]}`, false},
		{`{"messages":[{}],"x":1}`, false},
		{`{"messages":[{}] `, false},
		{`{"messages":[{} {}]}`, false},
		{`{"messages":[{},]}`, false},
		{`{"messages":[{"a":"unterminated}]}`, false},
		{`{"msgs":[{}]}`, false},
		{`{"messages":[{}]}x`, false},
		{`[{"messages":[]}]`, false},
		{``, false},
	} {
		if ok := checkSplit(t, tc.body); ok != tc.ok {
			t.Errorf("splitBatch(%q) ok=%v, want %v", tc.body, ok, tc.ok)
		}
	}
}

func FuzzSplitBatch(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"to":["a@example.com"],"html":"<p>\"hi\"</p>\\"}]}`,
		`{"messages":[{"a":[{"b":"]}"}]},{"c":"\\\""}]}`,
		`{"messages":[]}`,
		strings.Repeat(" ", 3) + `{"messages":[{"x":"\u005c"}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) { checkSplit(t, body) })
}

// batchBody is a batch of n messages of about 10 KB of text and HTML, like postie bench's.
func batchBody(n int) []byte {
	const words = "shipping order parcel tracking delivery customer thanks update account invoice receipt "
	var text, html strings.Builder
	for k := 0; text.Len() < 4600; k++ {
		line := (words + words)[k%17 : k%17+70]
		text.WriteString(line + "\n")
		html.WriteString("<p>" + line + "</p>\n")
	}
	item := map[string]any{"from": "Shop <orders@shop.example>", "to": []string{"a@example.com"},
		"subject": "Your order has shipped", "text": text.String(), "html": html.String(), "tags": []string{"bench"}}
	items := make([]any, n)
	for i := range items {
		items[i] = item
	}
	b, _ := json.Marshal(map[string]any{"messages": items})
	return b
}

// BenchmarkBatchSplit compares splitting a 500-message batch body into items with splitBatch and
// with encoding/json (decodeBatch); each item is decoded by decodeItem afterwards either way.
func BenchmarkBatchSplit(b *testing.B) {
	body := batchBody(500)
	b.Run("splitBatch", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, ok := splitBatch(body); !ok {
				b.Fatal("not split")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := decodeBatch(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	item, _ := splitBatch(body)
	b.Run("decodeStrict", func(b *testing.B) {
		b.SetBytes(int64(len(item[0])))
		for b.Loop() {
			if _, err := decodeStrict(item[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeItem", func(b *testing.B) {
		b.SetBytes(int64(len(item[0])))
		for b.Loop() {
			if _, err := decodeItem(item[0], "body"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// checkItem fails when decodeItemFast decodes raw differently from encoding/json, or when
// checkJSON finds something else in the rest it returns than in raw.
func checkItem(t *testing.T, raw string) (ok bool) {
	t.Helper()
	fast, rest, ok := decodeItemFast([]byte(raw))
	if !ok {
		return false
	}
	if got, want := checkJSON(rest, messageShape), checkJSON([]byte(raw), messageShape); !reflect.DeepEqual(got, want) {
		t.Errorf("%q: checkJSON of the rest %q: %+v, of the whole: %+v", raw, rest, got, want)
	}
	slow, err := decodeStrict([]byte(raw))
	if err != nil {
		t.Errorf("%q: decoded by the fast path, refused by encoding/json: %v", raw, err)
		return true
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("%q: fast path %+v, encoding/json %+v", raw, fast, slow)
	}
	return true
}

func TestDecodeItemFast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw string
		ok  bool
	}{
		{`{"to":["a@example.com"],"subject":"hi","html":"<p>x</p>","text":"x\ny"}`, true},
		{` { "text" : "t\u00e9\ud83d\ude00\"\\\/\b\f\r\t" , "to" : [ "a@b" ] , "tags":["x"], "template_version": 2, "data": {"a":[1,{"b":"}"}]} } `, true},
		{`{"html":"only html, \u003cp\u003e"}`, true},
		{`{"text":"x","html":"y","text":"z"}`, false}, // twice: left to encoding/json
		{`{"HTML":"x"}`, false},                     // matched case-insensitively there
		{`{"ht\u006dl":"x"}`, false},                // an escaped name
		{`{"subject":"no big strings"}`, false},     // nothing to gain
		{`{"text":"lone \ud800 surrogate"}`, false}, // U+FFFD there
		{"{\"text\":\"bad utf-8 \xff\"}", false},    // U+FFFD there
		{"{\"text\":\"control \x01\"}", false},      // a syntax error
		{`{"text":"bad escape \x"}`, false},         // a syntax error
		{`{"text":"x","unknown":1}`, false},         // refused by the strict decoder
		{`{"text":"x","to":"not an array"}`, false}, // likewise
		{`{"text":"x"} {}`, false},                  // trailing data
		{`{"text":"x",}`, false},                    // malformed
		{`{"text":null,"html":"y"}`, true},          // null leaves text empty
		{`{"text":"x","send_at":"2026-12-01T09:00:00Z"}`, true},
		// Decoded here, refused after by checkJSON of the rest (checkItem compares its findings).
		{`{"text":"x","subject":"a","subject":"b"}`, true},
		{`{"html":"y","subject":"\ud800"}`, true},
		{"{\"text\":\"x\",\"subject\":\"\xff\"}", true},
		{`{"text":"x","attachments":[{"content":"aGk=","filename":"a","filename":"b"}]}`, true},
	} {
		if ok := checkItem(t, tc.raw); ok != tc.ok {
			t.Errorf("decodeItemFast(%q) ok=%v, want %v", tc.raw, ok, tc.ok)
		}
	}
}

func FuzzDecodeItemFast(f *testing.F) {
	for _, s := range []string{
		`{"to":["a@example.com"],"subject":"hi","html":"<p>x</p>","text":"x\ny"}`,
		`{"text":"\ud83d\ude00 \u00e9 \"q\"","headers":{"X-A":"b"},"metadata":{"k":"v"},"stream":"broadcast"}`,
		`{"html":"a","attachments":[{"filename":"a.txt","content":"aGk="}],"send_at":null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) { checkItem(t, raw) })
}

// TestUnquoteMatchesEncodingJSON compares unquote with encoding/json on random JSON string
// contents (as stringEnd cuts them: no bare quote) made from bytes plainRun must stop at (backslash, controls, non-ASCII, the bytes
// next to its limits) and valid and broken escapes, at every offset within its 8-byte words.
func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	pieces := []string{"a", "Z", " ", "~", "\x7f", "\x1f", "\x00", "\x20", "\\", "\\\\", "\\n", "\\u003c",
		"\\u00e9", "\\ud83d\\ude00", "\\ud800", "\\x", "\\u12", "é", "😀", "\xff", "\xed\xa0\x80", "\\\"", "/"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var sb strings.Builder
		for range rng.IntN(24) {
			sb.WriteString(strings.Repeat("p", rng.IntN(10)))
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		src := sb.String()
		if end, ok := stringEnd([]byte(`"`+src+`"`), 0); !ok || end != len(src)+2 {
			continue // a bare quote: stringEnd would have cut the string there
		}
		got, ok := unquote([]byte(src))
		var want string
		err := json.Unmarshal([]byte(`"`+src+`"`), &want)
		switch {
		case ok && err != nil:
			t.Fatalf("unquote(%q) = %q, but encoding/json refuses it: %v", src, got, err)
		case ok && got != want:
			t.Fatalf("unquote(%q) = %q, encoding/json %q", src, got, want)
		case !ok && err == nil && !strings.Contains(want, "\uFFFD"):
			t.Fatalf("unquote(%q) refused a string encoding/json decodes cleanly to %q", src, want)
		}
	}
}

func TestPlainRun(t *testing.T) {
	t.Parallel()
	for n := range 40 {
		for _, stop := range []byte{'\\', 0x00, 0x1f, 0x80, 0xff} {
			s := append(bytes.Repeat([]byte{'x'}, n), stop, 'y')
			if got := plainRun(s); got != n {
				t.Errorf("plainRun(%q) = %d, want %d", s, got, n)
			}
		}
		s := bytes.Repeat([]byte{0x20, 0x7f, '[', ']'}, n)
		if got := plainRun(s); got != len(s) {
			t.Errorf("plainRun of %d printable bytes = %d", len(s), got)
		}
	}
}

// BenchmarkDecodeItem decodes one ≈8 KB message with text and HTML parts as a Go client sends it
// (json.Marshal writes < and > as \u003c and \u003e), the checks of checkJSON included.
func BenchmarkDecodeItem(b *testing.B) {
	line := "shipping order parcel tracking delivery customer thanks update account\n"
	raw, _ := json.Marshal(map[string]any{"to": []string{"a@example.com"}, "from": "Shop <orders@shop.example>",
		"subject": "Your order has shipped", "text": strings.Repeat(line, 52),
		"html": strings.Repeat("<p>"+line+"</p>\n", 52), "stream": "transactional", "tags": []string{"bench"}})
	for b.Loop() {
		if _, err := decodeItem(raw, "body"); err != nil {
			b.Fatal(err)
		}
	}
}
