package audience

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// The segment filter language: one JSON expression tree (docs/api.md, "Segments", has it in
// full). A node is an object with exactly one of these keys:
//
//	{"and": [node, …]}                       every node (an empty list: every contact)
//	{"or": [node, …]}                        any node (an empty list: no contact)
//	{"not": node}                            the contacts node does not match
//	{"field": "last_active_at", OP: value}   a contact field (store.FilterFields)
//	{"attr": "plan", OP: value}              a declared attribute
//	{"list": "lst_…", "status": "subscribed"} a subscription (status defaults to subscribed;
//	                                         pending, unsubscribed or any)
//
// A condition has exactly one operator OP: eq, ne, lt, le, gt, ge (and before/after, which are
// lt/gt for times), in (an array), contains and starts_with (strings), exists and missing
// (true). Values have the field's or attribute's type: a string, a number, true/false, or a
// time given as an RFC 3339 string or as {"ago": "30d"}, a duration taken back from the now of
// each query (units w, d, h, m, s, combined as in "1d12h"). Everything else is a FilterError
// naming the JSON path of what is wrong.

// Limits of a filter.
const (
	MaxFilterDepth  = 16   // nested and/or/not
	MaxFilterNodes  = 500  // nodes in all
	MaxFilterValues = 1000 // values of one in
	MaxFilterString = 1000 // bytes of one string value
	MaxFilterAgo    = 100 * 365 * 24 * time.Hour
)

// FilterError is a filter that does not parse or check. Path is the JSON path of the value at
// fault, from "filter" ("filter.and[1].before.ago"); the API answers 422 with it.
type FilterError struct {
	Path    string
	Message string
	Value   any // the value at fault, when it helps
}

func (e *FilterError) Error() string { return e.Path + ": " + e.Message }

// filterOps maps the language's operators to the store's comparisons.
var filterOps = map[string]string{
	"eq": store.CmpEq, "ne": store.CmpNe, "lt": store.CmpLt, "le": store.CmpLe, "gt": store.CmpGt,
	"ge": store.CmpGe, "before": store.CmpLt, "after": store.CmpGt, "in": store.CmpIn,
	"contains": store.CmpContains, "starts_with": store.CmpStartsWith, "exists": store.CmpExists,
	"missing": store.CmpMissing,
}

// opsByType are the operators each type takes.
var opsByType = map[string][]string{
	store.AttrString: {"eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "starts_with", "exists", "missing"},
	store.AttrNumber: {"eq", "ne", "lt", "le", "gt", "ge", "in", "exists", "missing"},
	store.AttrBool:   {"eq", "ne", "exists", "missing"},
	store.AttrTime:   {"eq", "ne", "lt", "le", "gt", "ge", "before", "after", "exists", "missing"},
}

// ParseFilter parses and checks a filter in the JSON language against the declared attributes
// (name → type). Every error is a *FilterError. The lists a filter names are only checked for
// their id's form here (Segments.Parse looks them up).
func ParseFilter(raw json.RawMessage, attrs map[string]string) (*store.Filter, error) {
	f, _, err := parseFilter(raw, attrs)
	return f, err
}

// parseFilter is ParseFilter that also returns where each list the filter names is first named
// (list id → JSON path of its "list" key).
func parseFilter(raw json.RawMessage, attrs map[string]string) (*store.Filter, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, &FilterError{Path: "filter", Message: "not JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, nil, &FilterError{Path: "filter", Message: "more than one JSON value"}
	}
	p := filterParser{attrs: attrs, lists: map[string]string{}}
	f, err := p.node("filter", v, 0)
	return f, p.lists, err
}

type filterParser struct {
	attrs map[string]string
	nodes int
	lists map[string]string // the lists named and where, when wanted
}

func errAt(path, format string, args ...any) *FilterError {
	return &FilterError{Path: path, Message: fmt.Sprintf(format, args...)}
}

func (p *filterParser) node(path string, v any, depth int) (*store.Filter, error) {
	p.nodes++
	if p.nodes > MaxFilterNodes {
		return nil, errAt(path, "the filter has more than %d nodes", MaxFilterNodes)
	}
	if depth > MaxFilterDepth {
		return nil, errAt(path, "nested deeper than %d", MaxFilterDepth)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errAt(path, "must be an object with one of and, or, not, field, attr, list")
	}
	var kinds []string
	for _, k := range []string{"and", "or", "not", "field", "attr", "list"} {
		if _, ok := obj[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		return nil, errAt(path, "must have exactly one of and, or, not, field, attr, list (has %s)", orNone(kinds))
	}
	kind := kinds[0]
	switch kind {
	case "and", "or", "not":
		if err := onlyKeys(path, obj, kind); err != nil {
			return nil, err
		}
		if kind == "not" {
			n, err := p.node(path+".not", obj["not"], depth+1)
			if err != nil {
				return nil, err
			}
			return &store.Filter{Op: store.FilterNot, Nodes: []*store.Filter{n}}, nil
		}
		arr, ok := obj[kind].([]any)
		if !ok {
			return nil, errAt(path+"."+kind, "must be an array of nodes")
		}
		f := &store.Filter{Op: map[string]string{"and": store.FilterAnd, "or": store.FilterOr}[kind],
			Nodes: make([]*store.Filter, len(arr))}
		for i, c := range arr {
			n, err := p.node(fmt.Sprintf("%s.%s[%d]", path, kind, i), c, depth+1)
			if err != nil {
				return nil, err
			}
			f.Nodes[i] = n
		}
		return f, nil
	case "list":
		f, err := listNode(path, obj)
		if err == nil && p.lists != nil {
			if _, seen := p.lists[f.ListID]; !seen {
				p.lists[f.ListID] = path + ".list"
			}
		}
		return f, err
	}
	return p.cond(path, kind, obj)
}

func orNone(ks []string) string {
	if len(ks) == 0 {
		return "none"
	}
	return strings.Join(ks, ", ")
}

// onlyKeys fails on the first key of obj (in order) that is not one of keys.
func onlyKeys(path string, obj map[string]any, keys ...string) error {
	var extra []string
	for k := range obj {
		if !slices.Contains(keys, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	return errAt(path+"."+extra[0], "unknown key here (this node takes %s)", strings.Join(keys, ", "))
}

func listNode(path string, obj map[string]any) (*store.Filter, error) {
	if err := onlyKeys(path, obj, "list", "status"); err != nil {
		return nil, err
	}
	listID, ok := obj["list"].(string)
	if !ok || !id.Valid("lst", listID) {
		return nil, &FilterError{Path: path + ".list", Message: "must be a list id (lst_…)", Value: obj["list"]}
	}
	f := &store.Filter{Op: store.FilterInList, ListID: listID, SubscriptionStatus: store.SubscriptionSubscribed}
	if st, given := obj["status"]; given {
		s, _ := st.(string)
		switch s {
		case store.SubscriptionSubscribed, store.SubscriptionPending, store.SubscriptionUnsubscribed, store.SubscriptionAny:
			f.SubscriptionStatus = s
		default:
			return nil, &FilterError{Path: path + ".status", Message: "must be one of subscribed, pending, unsubscribed, any", Value: st}
		}
	}
	return f, nil
}

func (p *filterParser) cond(path, kind string, obj map[string]any) (*store.Filter, error) {
	name, ok := obj[kind].(string)
	f := &store.Filter{Op: store.FilterCond}
	switch {
	case !ok:
		return nil, errAt(path+"."+kind, "must be a string")
	case kind == "field":
		typ, known := store.FilterFields[name]
		if !known {
			fields := make([]string, 0, len(store.FilterFields))
			for k := range store.FilterFields {
				fields = append(fields, k)
			}
			sort.Strings(fields)
			return nil, &FilterError{Path: path + ".field", Message: "unknown field (one of " + strings.Join(fields, ", ") + ")", Value: name}
		}
		f.Field, f.Type = name, typ
	default:
		typ, declared := p.attrs[name]
		if !declared {
			return nil, &FilterError{Path: path + ".attr", Message: "attribute is not declared (declare its type with PUT /v1/attributes/{name})", Value: name}
		}
		f.Attribute, f.Type = name, typ
	}
	var ops []string
	for k := range obj {
		if k != kind {
			ops = append(ops, k)
		}
	}
	sort.Strings(ops)
	if len(ops) != 1 {
		return nil, errAt(path, "a condition needs exactly one operator of %s (has %s)",
			strings.Join(opsByType[f.Type], ", "), orNone(ops))
	}
	op := ops[0]
	at := path + "." + op
	if !slices.Contains(opsByType[f.Type], op) {
		if _, known := filterOps[op]; !known {
			return nil, errAt(at, "unknown operator (one of %s)", strings.Join(opsByType[f.Type], ", "))
		}
		return nil, errAt(at, "not an operator of a %s (one of %s)", f.Type, strings.Join(opsByType[f.Type], ", "))
	}
	f.Cmp = filterOps[op]
	v := obj[op]
	switch f.Cmp {
	case store.CmpExists, store.CmpMissing:
		if v != true {
			return nil, &FilterError{Path: at, Message: "must be true", Value: v}
		}
		return f, nil
	case store.CmpIn:
		arr, ok := v.([]any)
		if !ok {
			return nil, errAt(at, "must be an array of %s values", f.Type)
		}
		if len(arr) > MaxFilterValues {
			return nil, errAt(at, "more than %d values", MaxFilterValues)
		}
		f.Values = make([]any, len(arr))
		for i, e := range arr {
			val, err := filterValue(fmt.Sprintf("%s[%d]", at, i), f, e, false)
			if err != nil {
				return nil, err
			}
			f.Values[i] = val
		}
		return f, nil
	}
	val, err := filterValue(at, f, v, f.Type == store.AttrTime)
	if err != nil {
		return nil, err
	}
	if d, ok := val.(time.Duration); ok {
		f.Ago = d
	} else {
		f.Value = val
	}
	return f, nil
}

// filterValue checks v, a value for f, and returns it as store.Filter.Value holds it (or a
// time.Duration for {"ago": …} when ago is allowed).
func filterValue(path string, f *store.Filter, v any, ago bool) (any, error) {
	bad := func(msg string) error { return &FilterError{Path: path, Message: msg, Value: v} }
	switch f.Type {
	case store.AttrString:
		s, ok := v.(string)
		if !ok {
			return nil, bad("must be a string")
		}
		if len(s) > MaxFilterString || strings.ContainsRune(s, 0) {
			return nil, bad(fmt.Sprintf("must be at most %d bytes, without U+0000", MaxFilterString))
		}
		if f.Field == "email" {
			s = strings.ToLower(s) // the email key
		}
		return s, nil
	case store.AttrNumber:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad("must be a number")
		}
		x, err := n.Float64()
		if err != nil || math.IsInf(x, 0) {
			return nil, bad("must be a finite number")
		}
		return x, nil
	case store.AttrBool:
		b, ok := v.(bool)
		if !ok {
			return nil, bad("must be true or false")
		}
		return b, nil
	}
	// AttrTime.
	if obj, ok := v.(map[string]any); ok && ago {
		if err := onlyKeys(path, obj, "ago"); err != nil {
			return nil, err
		}
		s, _ := obj["ago"].(string)
		d, err := ParseAgo(s)
		if err != nil {
			return nil, &FilterError{Path: path + ".ago", Message: err.Error(), Value: obj["ago"]}
		}
		return d, nil
	}
	s, ok := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if !ok || err != nil {
		msg := "must be an RFC 3339 time with a zone (2026-03-01T12:00:00Z)"
		if ago {
			msg += ` or {"ago": "30d"}`
		}
		return nil, bad(msg)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// ParseAgo parses the duration of {"ago": …}: one or more numbers each followed by a unit, w
// (weeks), d (days), h, m or s ("30d", "1d12h", "90m"); positive, at most 100 years.
func ParseAgo(s string) (time.Duration, error) {
	units := map[byte]time.Duration{'w': 7 * 24 * time.Hour, 'd': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}
	bad := errors.New(`must be a duration such as "30d", "12h" or "1d12h" (units w, d, h, m, s)`)
	if s == "" {
		return 0, bad
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 6 {
			return 0, bad
		}
		n, _ := strconv.Atoi(s[:i])
		u, ok := units[s[i]]
		if !ok {
			return 0, bad
		}
		total += time.Duration(n) * u
		s = s[i+1:]
	}
	if total <= 0 || total > MaxFilterAgo {
		return 0, errors.New("must be more than 0 and at most 100 years")
	}
	return total, nil
}

// CastAttribute converts raw, a value as text (a CSV cell, a column of an application
// database), to the JSON value of an attribute of type typ: a string as it is, a number
// (float64), a bool (true/false, yes/no, 1/0, any case), or a time (RFC 3339, or a date
// 2006-01-02 as midnight UTC), returned in UTC so that it encodes as RFC 3339 with Z. An empty
// raw (after trimming white space, except for strings) is nil: no value. A value that does not
// cast is an error saying what was expected.
func CastAttribute(typ, raw string) (any, error) {
	if typ == store.AttrString {
		if raw == "" {
			return nil, nil
		}
		return raw, nil
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, nil
	}
	switch typ {
	case store.AttrNumber:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("%q is not a number", raw)
		}
		return x, nil
	case store.AttrBool:
		switch strings.ToLower(s) {
		case "true", "yes", "1", "t", "y":
			return true, nil
		case "false", "no", "0", "f", "n":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a boolean (true/false, yes/no, 1/0)", raw)
	case store.AttrTime:
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return t, nil
		}
		return nil, fmt.Errorf("%q is not a time (RFC 3339, 2026-03-01T12:00:00Z, or a date 2026-03-01)", raw)
	}
	return nil, fmt.Errorf("unknown attribute type %q", typ)
}

// CheckAttribute checks a declaration: a valid name (store.AttributeNameValid) and a type. Its
// errors are *FilterError located at "name" or "type".
func CheckAttribute(name, typ string) error {
	if !store.AttributeNameValid(name) {
		return &FilterError{Path: "name", Value: name, Message: fmt.Sprintf(
			"must be 1 to %d ASCII letters, digits and underscores, not starting with a digit", store.MaxAttributeName)}
	}
	if !slices.Contains(store.AttrTypes, typ) {
		return &FilterError{Path: "type", Value: typ, Message: "must be one of " + strings.Join(store.AttrTypes, ", ")}
	}
	return nil
}
