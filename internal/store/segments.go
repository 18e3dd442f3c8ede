package store

import (
	"context"
	"encoding/json"
	"time"
)

// The segments area: declared attribute types and saved segments, and the evaluation of a
// checked Filter over contacts (package audience parses the JSON filter language into a Filter).
//
// Declared attributes. A contact attribute may be used in a filter only once its type is
// declared (AttrString, AttrNumber, AttrBool, AttrTime). Declaring one also creates an index on
// the attribute's typed value, so that a filter on it does not read every contact; the index's
// name is derived from the attribute's name, which AttributeNameValid checks before any driver
// uses it in SQL.
//
// Typed values. A contact's attribute counts as having a value for a filter only when its JSON
// value has the declared type: a JSON string for string, a number for number, true or false for
// bool, and for time a string in RFC 3339 form with a zone (Z or ±hh:mm), compared to the
// millisecond. Any other value (or none) is missing: it matches only CmpMissing (and the
// negation of a condition).

// Attribute is a declared contact attribute.
type Attribute struct {
	Name      string // AttributeNameValid
	Type      string // AttrString, AttrNumber, AttrBool, AttrTime
	CreatedAt time.Time
}

// MaxAttributeName is the longest attribute name that may be declared.
const MaxAttributeName = 64

// AttributeNameValid reports whether name may be declared: 1 to MaxAttributeName ASCII letters,
// digits and underscores, not starting with a digit. Drivers rely on it to put the name in SQL
// (a JSON path, an index name) without binding it.
func AttributeNameValid(name string) bool {
	if name == "" || len(name) > MaxAttributeName || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// AttrTypes lists the attribute types.
var AttrTypes = []string{AttrString, AttrNumber, AttrBool, AttrTime}

// Segment is a saved, named filter, evaluated whenever it is used.
type Segment struct {
	ID        string          // seg_…
	Name      string          // unique
	Filter    json.RawMessage // the filter as the API took it (package audience parses it)
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SegmentContactsParams pages through the contacts a filter matches, by id ascending.
type SegmentContactsParams struct {
	Filter *Filter // nil: every contact
	Now    time.Time
	Cursor string // the next cursor of the previous page (store.ContactCursor); "" for the first
	Limit  int    // defaults to DefaultListLimit, capped at MaxListLimit
}

// Segments is the declared attributes and saved segments store, and the evaluation of filters
// (implemented by every driver; the conformance suite has its cases).
type Segments interface {
	// AttributeDeclare declares an attribute and creates its index, in one transaction. Declaring
	// it again with the same type changes nothing and returns the stored declaration; with
	// another type it is ErrConflict (delete it first).
	AttributeDeclare(ctx context.Context, a Attribute) (Attribute, error)
	// AttributeList returns every declared attribute by name (they are few).
	AttributeList(ctx context.Context) ([]Attribute, error)
	// AttributeDelete removes a declaration and its index (ErrNotFound when none). Contacts keep
	// their values; segments using it no longer parse until it is declared again.
	AttributeDelete(ctx context.Context, name string) error

	// SegmentCreate stores a new segment (ID, CreatedAt and UpdatedAt set by the caller);
	// ErrConflict when its name is taken.
	SegmentCreate(ctx context.Context, seg Segment) (Segment, error)
	// SegmentGet returns one segment or ErrNotFound.
	SegmentGet(ctx context.Context, id string) (Segment, error)
	// SegmentList returns every segment by id (segments are few).
	SegmentList(ctx context.Context) ([]Segment, error)
	// SegmentUpdate replaces a segment's name and filter and sets UpdatedAt; ErrNotFound when
	// none, ErrConflict when the name is another segment's.
	SegmentUpdate(ctx context.Context, seg Segment) (Segment, error)
	// SegmentDelete deletes a segment (ErrNotFound when none).
	SegmentDelete(ctx context.Context, id string) error

	// SegmentCount counts the contacts f matches at now (nil: every contact). Relative times
	// (Filter.Ago) are taken back from now.
	SegmentCount(ctx context.Context, f *Filter, now time.Time) (int, error)
	// SegmentContacts returns one page of the contacts p.Filter matches at p.Now, by id, and the
	// next cursor ("" on the last page), as ContactList's (store.ContactCursor); a malformed one
	// is ErrBadCursor.
	SegmentContacts(ctx context.Context, p SegmentContactsParams) ([]Contact, string, error)
}
