package store

import "time"

// Filter is a checked segment filter over contacts: the tree package audience parses from the
// documented JSON language and each driver compiles to parameterised SQL of its own dialect.
// Every value reaches the database as a bind parameter; field and attribute names are checked
// against known fields and declared attributes before a driver sees them, and drivers still
// quote or bind them, never splice them as text.
//
// A node is exactly one of: a group (Op FilterAnd or FilterOr with Nodes), a negation (Op
// FilterNot with one node in Nodes), a condition on a contact field or a declared attribute
// (Field or Attribute, with Cmp and Value/Values), or a list membership (Op FilterInList with
// ListID and, optionally, SubscriptionStatus).
type Filter struct {
	Op    string // FilterAnd, FilterOr, FilterNot, FilterCond, FilterInList
	Nodes []*Filter

	// FilterCond: exactly one of Field and Attribute.
	Field     string // FilterFields
	Attribute string // a declared attribute's name
	Type      string // AttrString, AttrNumber, AttrBool, AttrTime: the field's or the attribute's type
	Cmp       string // CmpEq, CmpNe, …
	Value     any    // string, float64, bool or time.Time, as Type says; nil for CmpExists/CmpMissing
	Values    []any  // CmpIn: strings or float64s (string and number only)
	// Ago, for time comparisons relative to the query's now ("more than 30 days ago"): the
	// compared time is now − Ago, and Value is unused.
	Ago time.Duration

	// FilterInList.
	ListID             string
	SubscriptionStatus string // "" means subscribed; SubscriptionAny: any status
}

// SubscriptionAny as a FilterInList's SubscriptionStatus matches a subscription in any state.
const SubscriptionAny = "any"

// Filter node kinds.
const (
	FilterAnd    = "and"
	FilterOr     = "or"
	FilterNot    = "not"
	FilterCond   = "cond"
	FilterInList = "in_list"
)

// Comparisons of a FilterCond.
const (
	CmpEq         = "eq"
	CmpNe         = "ne"
	CmpLt         = "lt"
	CmpLe         = "le"
	CmpGt         = "gt"
	CmpGe         = "ge"
	CmpIn         = "in"
	CmpContains   = "contains"    // strings: substring, case-sensitive
	CmpStartsWith = "starts_with" // strings
	CmpExists     = "exists"      // the attribute (or nullable field) has a value
	CmpMissing    = "missing"     // it has none
)

// Attribute types: a declared attribute has one, and filters and imports cast to it.
const (
	AttrString = "string"
	AttrNumber = "number"
	AttrBool   = "bool"
	AttrTime   = "time"
)

// FilterFields are the contact fields a filter may compare, with their types. A string field
// has a value when it is not empty; email compares the email key (lower-cased); a time field
// has one when it is set (last_active_at may be unset).
var FilterFields = map[string]string{
	"email":          AttrString,
	"external_id":    AttrString,
	"name":           AttrString,
	"locale":         AttrString,
	"timezone":       AttrString,
	"created_at":     AttrTime,
	"updated_at":     AttrTime,
	"last_active_at": AttrTime,
}
