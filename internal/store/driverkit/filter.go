package driverkit

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// FilterDialect is what a driver tells FilterWhere about its SQL: how a bind parameter is
// written, and the expressions of contact fields and typed attribute values. Expressions refer
// to the contacts table's columns unqualified, as an index on an expression does, so that the
// planner can match a condition to the attribute's index.
type FilterDialect interface {
	// Placeholder is the text of the n-th bind parameter (1-based).
	Placeholder(n int) string
	// Field is the expression of a contact field (a key of store.FilterFields).
	Field(name string) string
	// Attr is the expression of an attribute's value of type typ, NULL when the attribute is
	// missing or holds another JSON type; name passed store.AttributeNameValid. It is the
	// expression the attribute's index is built on.
	Attr(name, typ string) string
	// Value is what binds a value of type typ compared to a field (attr false) or an attribute.
	Value(typ string, attr bool, v any) any
	// Contains and StartsWith are the conditions "x holds p" and "x begins with p" on strings;
	// p is a placeholder, which StartsWith may use twice.
	Contains(x, p string) string
	StartsWith(x, p string) string
	// ListsJoin tells how a list membership that is not one condition of an AND among others
	// is written: a LEFT JOIN of the list's subscriptions (true) or an IN over the list's
	// members (false); both read the members once rather than probe for each contact.
	ListsJoin() bool
}

// FilterSQL is a compiled filter: Joins (LEFT JOINs of subscriptions, aliased s1, s2, …, each
// adding at most one row per contact, so that counts are not changed) go after "FROM contacts",
// Where after WHERE, and Args are the bind values of both, numbered from the first given.
type FilterSQL struct {
	Joins string
	Where string
	Args  []any
}

// FilterWhere compiles f into a condition on the contacts table (not aliased) and its bind
// values, numbered from first (1-based) on. Every value is a bind parameter; field names come
// from store.FilterFields and attribute names must pass store.AttributeNameValid, else it
// fails. Every condition is two-valued (never NULL), so that a negation matches exactly the
// contacts its condition does not. A nil filter matches every contact.
func FilterWhere(d FilterDialect, f *store.Filter, now time.Time, first int) (FilterSQL, error) {
	c := filterCompiler{d: d, now: now, n: first - 1}
	if f == nil {
		return FilterSQL{Where: "TRUE"}, nil
	}
	var b strings.Builder
	if err := c.node(&b, f); err != nil {
		return FilterSQL{}, err
	}
	return FilterSQL{Joins: c.joins.String(), Where: b.String(), Args: c.args}, nil
}

type filterCompiler struct {
	d    FilterDialect
	now  time.Time
	n    int
	args []any
	// checked: the list membership being compiled is one condition of an AND with others.
	checked bool
	joins   strings.Builder
	njoins  int
}

func (c *filterCompiler) bind(v any) string {
	c.n++
	c.args = append(c.args, v)
	return c.d.Placeholder(c.n)
}

func (c *filterCompiler) node(b *strings.Builder, f *store.Filter) error {
	switch f.Op {
	case store.FilterAnd, store.FilterOr:
		if len(f.Nodes) == 0 {
			b.WriteString(map[string]string{store.FilterAnd: "TRUE", store.FilterOr: "FALSE"}[f.Op])
			return nil
		}
		b.WriteByte('(')
		for i, n := range f.Nodes {
			if i > 0 {
				b.WriteString(map[string]string{store.FilterAnd: " AND ", store.FilterOr: " OR "}[f.Op])
			}
			// A list membership beside another condition of an AND is checked, not scanned.
			c.checked = f.Op == store.FilterAnd && n.Op == store.FilterInList && slices.ContainsFunc(f.Nodes,
				func(o *store.Filter) bool { return o.Op != store.FilterInList })
			if err := c.node(b, n); err != nil {
				return err
			}
		}
		b.WriteByte(')')
		return nil
	case store.FilterNot:
		if len(f.Nodes) != 1 {
			return fmt.Errorf("filter: not needs one node, has %d", len(f.Nodes))
		}
		b.WriteString("NOT (")
		if err := c.node(b, f.Nodes[0]); err != nil {
			return err
		}
		b.WriteByte(')')
		return nil
	case store.FilterInList:
		if f.ListID == "" {
			return fmt.Errorf("filter: in_list without a list")
		}
		// Beside other conditions of an AND, a correlated EXISTS: the other conditions (an
		// attribute's index, last_active_at) pick the rows, and each is checked with one probe
		// of subscriptions_status. Standing alone (or under or/not), the list's members are read
		// once: SQLite plans an EXISTS alone as a probe per contact, and PostgreSQL an EXISTS
		// under or/not as a probe per contact, a NOT IN over more members than work_mem holds
		// as a scan of them per contact, but a LEFT JOIN as one hash join.
		var status string
		switch st := f.SubscriptionStatus; st {
		case store.SubscriptionAny:
		case "", store.SubscriptionSubscribed, store.SubscriptionPending, store.SubscriptionUnsubscribed:
			status = cmpOr(st, store.SubscriptionSubscribed)
		default:
			return fmt.Errorf("filter: unknown subscription status %q", st)
		}
		alias, end := "s", ")"
		switch {
		case c.checked:
			b.WriteString("EXISTS (SELECT 1 FROM subscriptions s WHERE s.contact_id = contacts.id AND s.list_id = ")
		case c.d.ListsJoin():
			c.njoins++
			alias, end = "s"+strconv.Itoa(c.njoins), ""
			b.WriteString(alias + ".contact_id IS NOT NULL")
			b = &c.joins
			fmt.Fprintf(b, " LEFT JOIN subscriptions %s ON %[1]s.contact_id = contacts.id AND %[1]s.list_id = ", alias)
		default:
			b.WriteString("id IN (SELECT s.contact_id FROM subscriptions s WHERE s.list_id = ")
		}
		b.WriteString(c.bind(f.ListID))
		if status != "" {
			b.WriteString(" AND " + alias + ".status = ")
			b.WriteString(c.bind(status))
		}
		b.WriteString(end)
		return nil
	case store.FilterCond:
		return c.cond(b, f)
	}
	return fmt.Errorf("filter: unknown node %q", f.Op)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// filterOps are the SQL operators of the ordered comparisons.
var filterOps = map[string]string{store.CmpEq: "=", store.CmpNe: "<>", store.CmpLt: "<", store.CmpLe: "<=",
	store.CmpGt: ">", store.CmpGe: ">="}

func (c *filterCompiler) cond(b *strings.Builder, f *store.Filter) error {
	var x, typ string
	attr := f.Attribute != ""
	switch {
	case attr && f.Field != "":
		return fmt.Errorf("filter: a condition on both field %q and attribute %q", f.Field, f.Attribute)
	case attr:
		if !store.AttributeNameValid(f.Attribute) {
			return fmt.Errorf("filter: invalid attribute name %q", f.Attribute)
		}
		typ = f.Type
		switch typ {
		case store.AttrString, store.AttrNumber, store.AttrBool, store.AttrTime:
		default:
			return fmt.Errorf("filter: attribute %s has unknown type %q", f.Attribute, typ)
		}
		x = c.d.Attr(f.Attribute, typ)
	default:
		t, ok := store.FilterFields[f.Field]
		if !ok {
			return fmt.Errorf("filter: unknown field %q", f.Field)
		}
		typ, x = t, c.d.Field(f.Field)
	}
	// has is the condition "x has a value"; a string field has one when it is not empty.
	has := x + " IS NOT NULL"
	if !attr && typ == store.AttrString {
		has = "(" + x + " IS NOT NULL AND " + x + " <> '')"
	}
	value := func(v any) (string, error) {
		if typ == store.AttrTime && f.Ago > 0 {
			v = c.now.Add(-f.Ago)
		}
		if err := checkFilterValue(typ, v); err != nil {
			return "", err
		}
		return c.bind(c.d.Value(typ, attr, v)), nil
	}
	switch f.Cmp {
	case store.CmpExists:
		b.WriteString(has)
		return nil
	case store.CmpMissing:
		b.WriteString("NOT " + has)
		return nil
	case store.CmpEq, store.CmpNe, store.CmpLt, store.CmpLe, store.CmpGt, store.CmpGe:
		p, err := value(f.Value)
		if err != nil {
			return err
		}
		fmt.Fprintf(b, "(%s AND %s %s %s)", has, x, filterOps[f.Cmp], p)
		return nil
	case store.CmpIn:
		if len(f.Values) == 0 {
			b.WriteString("FALSE")
			return nil
		}
		ps := make([]string, len(f.Values))
		for i, v := range f.Values {
			p, err := value(v)
			if err != nil {
				return err
			}
			ps[i] = p
		}
		fmt.Fprintf(b, "(%s AND %s IN (%s))", has, x, strings.Join(ps, ", "))
		return nil
	case store.CmpContains, store.CmpStartsWith:
		if typ != store.AttrString {
			return fmt.Errorf("filter: %s on a %s", f.Cmp, typ)
		}
		p, err := value(f.Value)
		if err != nil {
			return err
		}
		cond := c.d.Contains(x, p)
		if f.Cmp == store.CmpStartsWith {
			cond = c.d.StartsWith(x, p)
		}
		fmt.Fprintf(b, "(%s AND %s)", has, cond)
		return nil
	}
	return fmt.Errorf("filter: unknown comparison %q", f.Cmp)
}

// checkFilterValue checks that v is a Go value of type typ (see store.Filter.Value).
func checkFilterValue(typ string, v any) error {
	ok := false
	switch typ {
	case store.AttrString:
		_, ok = v.(string)
	case store.AttrNumber:
		_, ok = v.(float64)
	case store.AttrBool:
		_, ok = v.(bool)
	case store.AttrTime:
		_, ok = v.(time.Time)
	}
	if !ok {
		return fmt.Errorf("filter: value %v (%T) is not a %s", v, v, typ)
	}
	return nil
}

// AttrIndexName is the name of the index on an attribute's typed value: readable (the name,
// lower-cased and cut) and distinct for names differing only in case or past the cut (a hash).
func AttrIndexName(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	short := strings.ToLower(name)
	if len(short) > 32 {
		short = short[:32]
	}
	return "contacts_attr_" + short + "_" + strconv.FormatUint(uint64(h.Sum32()), 16)
}

// CheckAttribute checks an attribute before it is declared.
func CheckAttribute(a store.Attribute) error {
	if !store.AttributeNameValid(a.Name) {
		return fmt.Errorf("attribute name %q is not valid", a.Name)
	}
	switch a.Type {
	case store.AttrString, store.AttrNumber, store.AttrBool, store.AttrTime:
	default:
		return fmt.Errorf("attribute %s: unknown type %q", a.Name, a.Type)
	}
	if a.CreatedAt.IsZero() {
		return fmt.Errorf("attribute %s: no CreatedAt", a.Name)
	}
	return nil
}
