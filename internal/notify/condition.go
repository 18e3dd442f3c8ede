package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/audience"
)

// The condition language: the segment filter language (docs/api.md, "The filter language")
// over an event's data. A node is an object with exactly one of these keys:
//
//	{"and": [node, …]}                   every node (an empty list: always)
//	{"or": [node, …]}                    any node (an empty list: never)
//	{"not": node}                        the node does not match
//	{"data": "order.total", OP: value}   a condition on the value at a data path
//
// There are no declared types: a condition's type is its value's. A string is compared as a
// string, a number as a number, true/false as a bool; a time is an RFC 3339 string given to
// before or after, or {"ago": "30d"} (that long before the event is matched) with any ordering
// operator, and the data's value must then be an RFC 3339 string. in takes an array of strings
// or of numbers; exists and missing take true. As for segments, a comparison other than missing
// needs a value of the condition's type at the path: {"data": "plan", "ne": "pro"} does not
// match data without a plan. Errors are a *audience.FilterError naming the JSON path of what is
// wrong, from "condition".

// Limits of a condition, the segment language's.
const (
	maxCondDepth  = audience.MaxFilterDepth
	maxCondNodes  = audience.MaxFilterNodes
	maxCondValues = audience.MaxFilterValues
	maxCondString = audience.MaxFilterString
	// MaxPath bounds a data path: bytes, and keys.
	MaxPath     = 256
	maxPathKeys = 16
)

// Types of a condition.
const (
	typeString = "string"
	typeNumber = "number"
	typeBool   = "bool"
	typeTime   = "time"
)

// Condition is a parsed condition, evaluated in memory (Match). The zero Condition (no
// condition) matches every event.
type Condition struct {
	op    string // and, or, not, cond; "" for none
	nodes []*Condition

	path []string // cond: the data path's keys
	typ  string
	cmp  string // eq, ne, lt, le, gt, ge, in, contains, starts_with, exists, missing
	str  string
	num  float64
	b    bool
	t    time.Time
	ago  time.Duration // a time relative to the match (t unused)
	strs []string      // in
	nums []float64     // in
}

// condOps are the operators each type takes ("before"/"after" are lt/gt of a time).
var condOps = map[string][]string{
	typeString: {"eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "starts_with", "exists", "missing"},
	typeNumber: {"eq", "ne", "lt", "le", "gt", "ge", "in", "exists", "missing"},
	typeBool:   {"eq", "ne", "exists", "missing"},
	typeTime:   {"eq", "ne", "lt", "le", "gt", "ge", "before", "after", "exists", "missing"},
}

var allOps = []string{"eq", "ne", "lt", "le", "gt", "ge", "before", "after", "in", "contains", "starts_with", "exists", "missing"}

// ParseCondition parses and checks a condition; raw empty or JSON null is none (nil, nil).
// Every error is a *audience.FilterError whose Path starts at "condition".
func ParseCondition(raw json.RawMessage) (*Condition, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &audience.FilterError{Path: "condition", Message: "not JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &audience.FilterError{Path: "condition", Message: "more than one JSON value"}
	}
	p := condParser{}
	return p.node("condition", v, 0)
}

type condParser struct{ nodes int }

func errAt(path, format string, args ...any) *audience.FilterError {
	return &audience.FilterError{Path: path, Message: fmt.Sprintf(format, args...)}
}

func (p *condParser) node(path string, v any, depth int) (*Condition, error) {
	p.nodes++
	if p.nodes > maxCondNodes {
		return nil, errAt(path, "the condition has more than %d nodes", maxCondNodes)
	}
	if depth > maxCondDepth {
		return nil, errAt(path, "nested deeper than %d", maxCondDepth)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errAt(path, "must be an object with one of and, or, not, data")
	}
	var kinds []string
	for _, k := range []string{"and", "or", "not", "data"} {
		if _, ok := obj[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		has := "none"
		if len(kinds) > 0 {
			has = strings.Join(kinds, ", ")
		}
		return nil, errAt(path, "must have exactly one of and, or, not, data (has %s)", has)
	}
	kind := kinds[0]
	if kind == "data" {
		return p.cond(path, obj)
	}
	if err := onlyKeys(path, obj, kind); err != nil {
		return nil, err
	}
	if kind == "not" {
		n, err := p.node(path+".not", obj["not"], depth+1)
		if err != nil {
			return nil, err
		}
		return &Condition{op: "not", nodes: []*Condition{n}}, nil
	}
	arr, ok := obj[kind].([]any)
	if !ok {
		return nil, errAt(path+"."+kind, "must be an array of nodes")
	}
	c := &Condition{op: kind, nodes: make([]*Condition, len(arr))}
	for i, e := range arr {
		n, err := p.node(fmt.Sprintf("%s.%s[%d]", path, kind, i), e, depth+1)
		if err != nil {
			return nil, err
		}
		c.nodes[i] = n
	}
	return c, nil
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

func (p *condParser) cond(path string, obj map[string]any) (*Condition, error) {
	s, ok := obj["data"].(string)
	if !ok {
		return nil, errAt(path+".data", "must be a string: a path in the event's data such as order.total")
	}
	keys, msg := ParsePath(s)
	if msg != "" {
		return nil, &audience.FilterError{Path: path + ".data", Message: msg, Value: s}
	}
	var ops []string
	for k := range obj {
		if k != "data" {
			ops = append(ops, k)
		}
	}
	sort.Strings(ops)
	if len(ops) != 1 {
		has := "none"
		if len(ops) > 0 {
			has = strings.Join(ops, ", ")
		}
		return nil, errAt(path, "a condition needs exactly one operator of %s (has %s)", strings.Join(allOps, ", "), has)
	}
	op := ops[0]
	at := path + "." + op
	if !slices.Contains(allOps, op) {
		return nil, errAt(at, "unknown operator (one of %s)", strings.Join(allOps, ", "))
	}
	c := &Condition{op: "cond", path: keys, cmp: op}
	v := obj[op]
	switch op {
	case "exists", "missing":
		if v != true {
			return nil, &audience.FilterError{Path: at, Message: "must be true", Value: v}
		}
		return c, nil
	case "in":
		arr, ok := v.([]any)
		if !ok {
			return nil, errAt(at, "must be an array of strings or of numbers")
		}
		if len(arr) > maxCondValues {
			return nil, errAt(at, "more than %d values", maxCondValues)
		}
		c.typ = typeString
		if len(arr) > 0 {
			if _, num := arr[0].(json.Number); num {
				c.typ = typeNumber
			}
		}
		for i, e := range arr {
			ep := fmt.Sprintf("%s[%d]", at, i)
			if c.typ == typeNumber {
				x, err := number(ep, e)
				if err != nil {
					return nil, err
				}
				c.nums = append(c.nums, x)
				continue
			}
			s, err := str(ep, e)
			if err != nil {
				return nil, err
			}
			c.strs = append(c.strs, s)
		}
		return c, nil
	case "before", "after":
		c.typ = typeTime
		c.cmp = map[string]string{"before": "lt", "after": "gt"}[op]
		return c, c.timeValue(at, v)
	}
	switch x := v.(type) {
	case string:
		c.typ = typeString
		s, err := str(at, x)
		c.str = s
		if err != nil {
			return nil, err
		}
	case json.Number:
		c.typ = typeNumber
		n, err := number(at, x)
		if err != nil {
			return nil, err
		}
		c.num = n
	case bool:
		c.typ, c.b = typeBool, x
	case map[string]any:
		c.typ = typeTime
		if err := c.timeValue(at, x); err != nil {
			return nil, err
		}
	default:
		return nil, &audience.FilterError{Path: at, Value: v,
			Message: `must be a string, a number, true or false, or a time as {"ago": "30d"}`}
	}
	if !slices.Contains(condOps[c.typ], op) {
		return nil, errAt(at, "not an operator of a %s (one of %s)", c.typ, strings.Join(condOps[c.typ], ", "))
	}
	return c, nil
}

// timeValue sets c's time: an RFC 3339 string, or {"ago": …}.
func (c *Condition) timeValue(at string, v any) error {
	if obj, ok := v.(map[string]any); ok {
		if err := onlyKeys(at, obj, "ago"); err != nil {
			return err
		}
		s, _ := obj["ago"].(string)
		d, err := audience.ParseAgo(s)
		if err != nil {
			return &audience.FilterError{Path: at + ".ago", Message: err.Error(), Value: obj["ago"]}
		}
		c.ago = d
		return nil
	}
	s, ok := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if !ok || err != nil {
		return &audience.FilterError{Path: at, Value: v,
			Message: `must be an RFC 3339 time with a zone (2026-03-01T12:00:00Z) or {"ago": "30d"}`}
	}
	c.t = t
	return nil
}

func str(path string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", &audience.FilterError{Path: path, Message: "must be a string", Value: v}
	}
	if len(s) > maxCondString || strings.ContainsRune(s, 0) {
		return "", &audience.FilterError{Path: path, Value: v,
			Message: fmt.Sprintf("must be at most %d bytes, without U+0000", maxCondString)}
	}
	return s, nil
}

func number(path string, v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, &audience.FilterError{Path: path, Message: "must be a number", Value: v}
	}
	x, err := n.Float64()
	if err != nil || math.IsInf(x, 0) {
		return 0, &audience.FilterError{Path: path, Message: "must be a finite number", Value: v}
	}
	return x, nil
}

// ParsePath splits a data path ("order.total", "items.0.sku": keys separated by dots, a key of
// digits also indexing an array) into its keys, or says what is wrong with it.
func ParsePath(s string) ([]string, string) {
	const bad = "must be a path in the event's data such as order.total: keys separated by dots"
	switch {
	case s == "":
		return nil, bad
	case len(s) > MaxPath || !utf8.ValidString(s):
		return nil, fmt.Sprintf("must be at most %d bytes of UTF-8", MaxPath)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, "must not contain control characters"
	}
	keys := strings.Split(s, ".")
	if len(keys) > maxPathKeys {
		return nil, fmt.Sprintf("at most %d keys", maxPathKeys)
	}
	if slices.Contains(keys, "") {
		return nil, bad
	}
	return keys, ""
}

// Lookup returns the value at the path keys in data (decoded with json.Number numbers), and
// whether there is one (JSON null counts as none).
func Lookup(data any, keys []string) (any, bool) {
	v := data
	for _, k := range keys {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// Match evaluates the condition over data (decoded with json.Number numbers) at now (the
// time {"ago": …} counts back from). A nil condition matches.
func (c *Condition) Match(data any, now time.Time) bool {
	if c == nil {
		return true
	}
	switch c.op {
	case "and":
		for _, n := range c.nodes {
			if !n.Match(data, now) {
				return false
			}
		}
		return true
	case "or":
		for _, n := range c.nodes {
			if n.Match(data, now) {
				return true
			}
		}
		return false
	case "not":
		return !c.nodes[0].Match(data, now)
	}
	v, found := Lookup(data, c.path)
	switch c.cmp {
	case "exists":
		return found
	case "missing":
		return !found
	}
	if !found {
		return false
	}
	switch c.typ {
	case typeString:
		s, ok := v.(string)
		if !ok {
			return false
		}
		switch c.cmp {
		case "in":
			return slices.Contains(c.strs, s)
		case "contains":
			return strings.Contains(s, c.str)
		case "starts_with":
			return strings.HasPrefix(s, c.str)
		}
		return compare(c.cmp, strings.Compare(s, c.str))
	case typeNumber:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		x, err := n.Float64()
		if err != nil {
			return false
		}
		if c.cmp == "in" {
			return slices.Contains(c.nums, x)
		}
		switch {
		case x < c.num:
			return compare(c.cmp, -1)
		case x > c.num:
			return compare(c.cmp, 1)
		}
		return compare(c.cmp, 0)
	case typeBool:
		b, ok := v.(bool)
		if !ok {
			return false
		}
		return compare(c.cmp, map[bool]int{true: 0, false: 1}[b == c.b])
	}
	s, ok := v.(string)
	if !ok {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return false
	}
	ref := c.t
	if c.ago > 0 {
		ref = now.Add(-c.ago)
	}
	// Times compare to the millisecond, as segments compare attributes.
	t, ref = t.Truncate(time.Millisecond), ref.Truncate(time.Millisecond)
	return compare(c.cmp, t.Compare(ref))
}

// compare applies the comparison cmp to the sign of a three-way comparison. For a bool only
// eq and ne come here, with 0 for equal and 1 for not.
func compare(cmp string, sign int) bool {
	switch cmp {
	case "eq":
		return sign == 0
	case "ne":
		return sign != 0
	case "lt":
		return sign < 0
	case "le":
		return sign <= 0
	case "gt":
		return sign > 0
	case "ge":
		return sign >= 0
	}
	return false
}
