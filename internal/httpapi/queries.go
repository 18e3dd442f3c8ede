package httpapi

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// Listings refuse a cursor no listing could have returned, and apply a created_after or
// created_before of 0001-01-01T00:00:00Z (the zero time, which many clients send for "no
// bound") as the bound it says rather than dropping it. Both are checked here, before the
// handlers, through huma's Resolver.

// badCursor is the 422 of a cursor that no listing returned.
func badCursor() []error {
	return []error{&huma.ErrorDetail{Location: "query.cursor",
		Message: "not a cursor this listing returned; pass next_cursor back unchanged"}}
}

// applyZero returns t, or when it is the zero time, given (a pointer that is not nil), the
// instant after it: the store takes a zero time as "no filter", while the zero time given as a
// bound is one. Nothing is created before it; everything is created after it.
func applyZero(t time.Time, given bool) time.Time {
	if given && t.IsZero() {
		return t.Add(time.Nanosecond)
	}
	return t
}

// Resolve checks the cursor (the id of a message) and applies zero times.
func (in *listInput) Resolve(ctx huma.Context) []error {
	in.CreatedAfter = applyZero(in.CreatedAfter, ctx.Query("created_after") != "")
	in.CreatedBefore = applyZero(in.CreatedBefore, ctx.Query("created_before") != "")
	if in.Cursor != "" && !id.Valid(id.Message, in.Cursor) {
		return badCursor()
	}
	return nil
}

// Resolve checks the cursor: the name of a template.
func (in *templateListInput) Resolve(huma.Context) []error {
	if name, err := store.TemplateCursorAfter(in.Cursor); err != nil || (in.Cursor != "" && !templates.ValidName(name)) {
		return badCursor()
	}
	return nil
}

// Resolve checks the cursor: a time, a scope and an address as suppressions keep them
// (lowercase, or an erased person's "erased:" key).
func (in *suppressionListInput) Resolve(huma.Context) []error {
	if in.Cursor == "" {
		return nil
	}
	_, email, scope, err := store.SuppressionCursorAfter(in.Cursor)
	if err != nil || checkScope(scope) != "" {
		return badCursor()
	}
	if erased, ok := strings.CutPrefix(email, "erased:"); ok {
		if _, err := hex.DecodeString(erased); err != nil || erased == "" || strings.ToLower(erased) != erased {
			return badCursor()
		}
		return nil
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Email != email || strings.ToLower(email) != email {
		return badCursor()
	}
	return nil
}
