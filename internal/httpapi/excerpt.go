package httpapi

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// maxEcho is how many characters of a value a problem document echoes back: enough to recognise
// it, not a copy of a megabyte the client already has.
const maxEcho = 200

// excerpt returns s, or when it is longer than maxEcho characters its first maxEcho characters
// followed by "… (N bytes)", N the length of s.
func excerpt(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut, n := 0, 0
	for cut < len(s) && n < maxEcho {
		_, size := utf8.DecodeRuneInString(s[cut:])
		cut += size
		n++
	}
	if cut == len(s) {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

// capProblem shortens what a problem document echoes (detail, and each error's location,
// message and value) to excerpts, and returns it.
func capProblem(em *huma.ErrorModel) *huma.ErrorModel {
	em.Detail = excerpt(em.Detail)
	for _, e := range em.Errors {
		e.Location, e.Message = excerpt(e.Location), excerpt(e.Message)
		switch v := e.Value.(type) {
		case nil, bool, int, int64, float64:
		case string:
			e.Value = excerpt(v)
		default: // an object or array huma's validation names, a time, …
			if b, err := json.Marshal(v); err != nil {
				e.Value = nil
			} else if len(b) > maxEcho {
				e.Value = excerpt(string(b))
			}
		}
	}
	return em
}

// capProblems is the API's response transformer: every problem document it writes echoes only
// excerpts.
func capProblems(_ huma.Context, _ string, v any) (any, error) {
	if em, ok := v.(*huma.ErrorModel); ok {
		return capProblem(em), nil
	}
	return v, nil
}
