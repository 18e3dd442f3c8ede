package httpapi

import (
	"fmt"
	"strings"
	"testing"
)

// TestFoldKey: two keys fold alike exactly when encoding/json would match them to one field
// (strings.EqualFold), Unicode folds (Kelvin sign, long s) included.
func TestFoldKey(t *testing.T) {
	t.Parallel()
	keys := []string{"subject", "Subject", "SUBJECT", "ſubject", "ſUBJECT", "subjecT", "subjects", "k", "K", "\u212a",
		"reply_to", "Reply_To", "template_version", "data", "DATA", "é", "É", "ß", "ẞ", "σ", "Σ", "ς", ""}
	for _, a := range keys {
		for _, b := range keys {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("foldKey(%q) == foldKey(%q) is %v, EqualFold %v", a, b, got, want)
			}
		}
	}
}

// TestCheckJSONManyKeys: duplicates are found past the short list, in a large object.
func TestCheckJSONManyKeys(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&b, `"k%d": %d, `, i, i)
	}
	for _, tc := range []struct {
		last string
		dup  bool
	}{{`"k40": 1}`, false}, {`"k3": 1}`, true}, {`"k39": 1}`, true}} {
		is := checkJSON([]byte(b.String()+tc.last), nil)
		if (is != nil) != tc.dup {
			t.Errorf("%s: issue %v, want a duplicate %v", tc.last, is, tc.dup)
		}
	}
}
