package httpapi

import (
	"bytes"
	"testing"
)

// decodeItemFast cuts attachments[].content out of the object and decodes each straight into
// octets; what it leaves to encoding/json, where Base64.UnmarshalJSON decodes the same strings,
// must come out the same either way (checkItem).
func TestDecodeItemFastAttachments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw string
		ok  bool
	}{
		{`{"text":"x","attachments":[{"filename":"a.txt","content":"aGk="}]}`, true},
		{`{"attachments":[{"content":"aGk=","filename":"a.txt"},{"filename":"b.bin","content":"AAEC/w=="}],"subject":"no text"}`, true},
		{` { "attachments" : [ ] , "text" : "x" } `, true},
		{`{"attachments":[{"filename":"a"},{"content":"aGk="}],"html":"h"}`, true},                // one without content
		{`{"attachments":[{"content":"aGk\/"}],"text":"x"}`, true},                                // an escape in the base64
		{`{"attachments":[{"content":"aG\nk="}],"text":"x"}`, true},                               // an escaped line break, which base64 skips
		{`{"attachments":[{"content":"not base64!"}],"text":"x"}`, true},                          // kept as the error, for the message service
		{`{"attachments":[{"content":""}],"text":"x"}`, true},                                     // empty: not given
		{`{"attachments":[{"content":null}],"text":"x"}`, true},                                   // null: not given
		{`{"attachments":[{"content":"aGk=","content":"aGk="}],"text":"x"}`, false},               // twice in one
		{`{"attachments":[{"Content":"aGk="}],"text":"x"}`, false},                                // another case
		{`{"attachments":[{"con\u0074ent":"aGk="}],"text":"x"}`, false},                           // an escaped name
		{`{"attachments":[{"content":"aGk="}],"attachments":[],"text":"x"}`, false},               // the array twice
		{`{"attachments":["aGk="],"text":"x"}`, false},                                            // not an object
		{`{"attachments":[{"content":5}],"text":"x"}`, false},                                     // not a string
		{`{"attachments":[{"content":"aGk=","extra":1}],"text":"x"}`, false},                      // unknown field
		{`{"attachments":[{"content":"aGk="} {"content":"aGk="}],"text":"x"}`, false},             // malformed
		{`{"attachments":[{"filename":"a" "content":"aGk="}],"text":"x"}`, false},                 // malformed
		{`{"attachments":[{"content":"aGk=","filename":{"a":"}"}}],"text":"x"}`, false},           // a wrong type
		{`{"attachments":[{"content_type":"text/plain","content":"aGk="}],"template":"t"}`, true}, // no html or text
	} {
		if ok := checkItem(t, tc.raw); ok != tc.ok {
			t.Errorf("decodeItemFast(%q) ok=%v, want %v", tc.raw, ok, tc.ok)
		}
	}
}

func TestBase64(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		json  string
		want  []byte
		given bool
		bad   bool // not valid base64
	}{
		{`"aGk="`, []byte("hi"), true, false},
		{`"aGk\u003d"`, []byte("hi"), true, false},
		{`"aG\r\nk="`, []byte("hi"), true, false},
		{`""`, nil, false, false},
		{`null`, nil, false, false},
		{`"aGk"`, nil, true, true},
		{`"a-k="`, nil, true, true},
	} {
		var c Base64
		if err := c.UnmarshalJSON([]byte(tc.json)); err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if !bytes.Equal(c.Bytes(), tc.want) || c.given != tc.given || (c.err != nil) != tc.bad {
			t.Errorf("%s: %q given=%v err=%v; want %q given=%v bad=%v", tc.json, c.Bytes(), c.given, c.err, tc.want, tc.given, tc.bad)
		}
		if tc.want != nil {
			out, _ := c.MarshalJSON()
			var back Base64
			if err := back.UnmarshalJSON(out); err != nil || !bytes.Equal(back.Bytes(), tc.want) {
				t.Errorf("%s: marshalled as %s, which reads back as %q (%v)", tc.json, out, back.Bytes(), err)
			}
		}
	}
	for _, tok := range []string{`5`, `{}`, `[]`, `true`} {
		var c Base64
		if err := c.UnmarshalJSON([]byte(tok)); err == nil {
			t.Errorf("%s: no error, want a type error", tok)
		}
	}
}
