package render

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Placeholders unsubscribe_url and preferences_url return when Context.Links leaves a link
// empty. They are valid https URLs under the reserved .invalid top-level domain (RFC 2606), so
// html/template keeps them as they are in href attributes and previews show a working-looking
// link that can never reach anyone.
const (
	PlaceholderUnsubscribeURL = "https://postie.invalid/unsubscribe"
	PlaceholderPreferencesURL = "https://postie.invalid/preferences"
)

// state is what the template functions of one instance see: the budget and the per-render
// context (links, default time zone). An instance renders one message at a time, so the
// functions read it without locking.
type state struct {
	budget
	links Links
	tz    *time.Location
	zones map[string]*time.Location // resolved at Compile from literal zone names; read-only
}

// Names of the hidden functions the compiler adds to parse trees (see compile.go). They are
// callable from templates but do nothing useful there.
const (
	fnValue = "__v"    // appended to every printing action: nil → "", floats without exponent
	fnTick  = "__tick" // called at the top of every range iteration: checks the time budget
)

// funcs returns the function map bound to st. Every function checks the time budget, so a
// loop that calls functions without writing anything still stops at the deadline.
func funcs(st *state) map[string]any {
	return map[string]any{
		"default":  st.defaultValue,
		"upper":    stringFunc(st, strings.ToUpper),
		"lower":    stringFunc(st, strings.ToLower),
		"title":    stringFunc(st, title),
		"trim":     stringFunc(st, strings.TrimSpace),
		"truncate": func(n int, v any) (string, error) { return truncate(n, toString(v)), st.check() },
		"join": func(sep string, list any) (string, error) {
			s, err := join(sep, list)
			if err == nil {
				err = st.check()
			}
			return s, err
		},
		"date": func(layout string, v any, zone ...any) (string, error) {
			return st.date(layout, v, zone)
		},
		"number": func(v any, decimals ...int) (string, error) {
			if err := st.check(); err != nil {
				return "", err
			}
			return formatNumber(v, decimals)
		},
		"currency": func(a, b any) (string, error) {
			if err := st.check(); err != nil {
				return "", err
			}
			return formatCurrency(a, b)
		},
		"unsubscribe_url": st.unsubscribeURL,
		"preferences_url": st.preferencesURL,
		fnValue:           func(v any) (any, error) { return printable(v), st.check() },
		fnTick:            func() (string, error) { return "", st.check() },
	}
}

// defaultValue is default: v, or def when v is empty.
func (st *state) defaultValue(def, v any) (any, error) {
	if isEmpty(v) {
		return def, st.check()
	}
	return v, st.check()
}

func (st *state) date(layout string, v any, zone []any) (string, error) {
	if err := st.check(); err != nil {
		return "", err
	}
	return formatDate(st, layout, v, zone)
}

func (st *state) unsubscribeURL() string {
	if st.links.UnsubscribeURL == "" {
		return PlaceholderUnsubscribeURL
	}
	return st.links.UnsubscribeURL
}

func (st *state) preferencesURL() string {
	if st.links.PreferencesURL == "" {
		return PlaceholderPreferencesURL
	}
	return st.links.PreferencesURL
}

func stringFunc(st *state, f func(string) string) func(any) (string, error) {
	return func(v any) (string, error) { return f(toString(v)), st.check() }
}

// printable is what a printing action outputs for v: "" for nil (a JSON null, a missing
// index), numbers in plain decimal notation (JSON numbers decoded as float64 would otherwise
// print as 1e+06), anything else unchanged.
func printable(v any) any {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32)
	case json.Number:
		if d, err := decimal(v); err == nil {
			return d
		}
		return v.String()
	}
	return v
}

// toString is how string functions see their argument.
func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(printable(v))
}

// isEmpty reports whether default should replace v: nil, "", and empty arrays and objects.
// Zero and false are values, not absences.
func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array, reflect.String:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// title upper-cases the first letter of every word (a word starts after a space or
// punctuation other than an apostrophe) and leaves the other letters alone.
func title(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	start := true
	for _, r := range s {
		if start && unicode.IsLetter(r) {
			b.WriteRune(unicode.ToTitle(r))
		} else {
			b.WriteRune(r)
		}
		start = !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '’')
	}
	return b.String()
}

// truncate cuts s to n characters (runes), adding "…" when it cut anything.
func truncate(n int, s string) string {
	if n < 0 {
		n = 0
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

func join(sep string, list any) (string, error) {
	switch l := list.(type) {
	case nil:
		return "", nil
	case []string:
		return strings.Join(l, sep), nil
	case []any:
		parts := make([]string, len(l))
		for i, v := range l {
			parts[i] = toString(v)
		}
		return strings.Join(parts, sep), nil
	}
	rv := reflect.ValueOf(list)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return "", fmt.Errorf("join: %T is not a list", list)
	}
	parts := make([]string, rv.Len())
	for i := range parts {
		parts[i] = toString(rv.Index(i).Interface())
	}
	return strings.Join(parts, sep), nil
}

// dateLayouts are the named layouts date accepts besides Go reference layouts.
var dateLayouts = map[string]string{
	"date":     "2006-01-02",
	"time":     "15:04",
	"datetime": "2006-01-02 15:04",
	"short":    "Jan 2, 2006",
	"medium":   "Jan 2, 2006, 3:04 PM",
	"long":     "January 2, 2006",
	"full":     "Monday, January 2, 2006",
	"kitchen":  "3:04 PM",
	"rfc3339":  time.RFC3339,
	"rfc1123":  time.RFC1123Z,
}

func formatDate(st *state, layout string, v any, zone []any) (string, error) {
	if l, ok := dateLayouts[layout]; ok {
		layout = l
	}
	loc := st.tz
	if len(zone) > 1 {
		return "", fmt.Errorf("date takes at most one time zone, got %d", len(zone))
	}
	if len(zone) == 1 {
		var err error
		if loc, err = st.zone(zone[0]); err != nil {
			return "", err
		}
	}
	if loc == nil {
		loc = time.UTC
	}
	t, err := toTime(v, loc)
	if err != nil {
		return "", err
	}
	return t.In(loc).Format(layout), nil
}

// zone resolves a time zone argument: a *time.Location, "" (the default), "UTC", a fixed
// offset such as "+02:00", or a zone name written literally in the template (resolved at
// Compile, so rendering never reads the zone database).
func (st *state) zone(z any) (*time.Location, error) {
	switch z := z.(type) {
	case *time.Location:
		return z, nil
	case nil:
		return st.tz, nil
	case string:
		if z == "" {
			return st.tz, nil
		}
		if loc, ok := fixedZone(z); ok {
			return loc, nil
		}
		if loc, ok := st.zones[z]; ok {
			return loc, nil
		}
		return nil, fmt.Errorf("time zone %q is not known here: write zone names literally in the template, or set the recipient's zone in the render context", z)
	}
	return nil, fmt.Errorf("time zone must be a name, got %T", z)
}

// fixedZone parses "UTC", "Z" and offsets "+02:00", "-0530", "+02".
func fixedZone(z string) (*time.Location, bool) {
	if z == "UTC" || z == "Z" {
		return time.UTC, true
	}
	if len(z) < 3 || (z[0] != '+' && z[0] != '-') {
		return nil, false
	}
	digits := strings.ReplaceAll(z[1:], ":", "")
	if len(digits) == 2 {
		digits += "00"
	}
	if len(digits) != 4 {
		return nil, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n/100 > 14 || n%100 > 59 {
		return nil, false
	}
	secs := (n/100*60 + n%100) * 60
	if z[0] == '-' {
		secs = -secs
	}
	return time.FixedZone(z, secs), true
}

// toTime accepts a time.Time, an RFC 3339 string, a date ("2006-01-02") or a local date and
// time ("2006-01-02T15:04:05", in loc), or a number of seconds since the Unix epoch.
func toTime(v any, loc *time.Location) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v, nil
	case *time.Time:
		if v != nil {
			return *v, nil
		}
	case string:
		if len(v) == len(time.DateOnly) {
			// Only the date layout fits ten bytes: the others need at least fifteen. Trying it
			// first spares four failed parses (and their errors) for the common case.
			if t, err := time.ParseInLocation(time.DateOnly, v, loc); err == nil {
				return t, nil
			}
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, nil
		}
		for _, l := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02"} {
			if t, err := time.ParseInLocation(l, v, loc); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("date: %q is not an RFC 3339 time or a date", v)
	default:
		if d, err := decimal(v); err == nil {
			f, _ := strconv.ParseFloat(d, 64)
			sec := int64(f)
			return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
		}
	}
	return time.Time{}, fmt.Errorf("date: cannot use %T as a time", v)
}

// decimal returns v as a plain decimal string ("-1234.5", no exponent) or an error when v is
// not a number or a numeric string.
func decimal(v any) (string, error) {
	var s string
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case json.Number:
		s = string(v)
	case string:
		s = strings.TrimSpace(v)
	default:
		return "", fmt.Errorf("%T is not a number", v)
	}
	if plainDecimal(s) {
		return strings.TrimPrefix(s, "+"), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1e300 || f < -1e300 {
		return "", fmt.Errorf("%q is not a number", s)
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}

// plainDecimal reports whether s is [+-]digits[.digits].
func plainDecimal(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	intPart, frac, dot := strings.Cut(s, ".")
	if intPart == "" || (dot && frac == "") {
		return false
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

func formatNumber(v any, decimals []int) (string, error) {
	d, err := decimal(v)
	if err != nil {
		return "", fmt.Errorf("number: %w", err)
	}
	places := -1
	switch len(decimals) {
	case 0:
	case 1:
		places = decimals[0]
		if places < 0 || places > 20 {
			return "", fmt.Errorf("number: %d decimals is out of range 0–20", places)
		}
	default:
		return "", fmt.Errorf("number takes at most one count of decimals, got %d", len(decimals))
	}
	return groupDecimal(d, places), nil
}

// groupDecimal formats a plain decimal string with "," between thousands and "." before the
// decimals, rounded half away from zero to places decimals (places < 0: as many as it has).
func groupDecimal(d string, places int) string {
	neg := strings.HasPrefix(d, "-")
	d = strings.TrimPrefix(d, "-")
	intPart, frac, _ := strings.Cut(d, ".")
	if places >= 0 {
		if len(frac) > places {
			up := frac[places] >= '5'
			frac = frac[:places]
			if up {
				intPart, frac = roundUp(intPart, frac)
			}
		}
		for len(frac) < places {
			frac += "0"
		}
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	var b strings.Builder
	if neg && strings.Trim(intPart+frac, "0") != "" {
		b.WriteByte('-')
	}
	for i := 0; i < len(intPart); i++ {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(intPart[i])
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// roundUp adds one unit in the last place of intPart.frac.
func roundUp(intPart, frac string) (string, string) {
	digits := []byte(intPart + frac)
	i := len(digits) - 1
	for ; i >= 0; i-- {
		if digits[i] == '9' {
			digits[i] = '0'
			continue
		}
		digits[i]++
		break
	}
	if i < 0 {
		digits = append([]byte{'1'}, digits...)
	}
	n := len(digits) - len(frac)
	return string(digits[:n]), string(digits[n:])
}

// currencyFormat is how one currency is written in English: its symbol before the amount and
// its number of minor-unit decimals (ISO 4217).
type currencyFormat struct {
	symbol   string
	decimals int
}

// currencies holds the common ones; any other three-letter code is written "SEK 1,234.50".
var currencies = map[string]currencyFormat{
	"USD": {"$", 2}, "EUR": {"€", 2}, "GBP": {"£", 2}, "JPY": {"¥", 0}, "CNY": {"CN¥", 2},
	"INR": {"₹", 2}, "KRW": {"₩", 0}, "BRL": {"R$", 2}, "CAD": {"CA$", 2}, "AUD": {"A$", 2},
	"NZD": {"NZ$", 2}, "MXN": {"MX$", 2}, "HKD": {"HK$", 2}, "ILS": {"₪", 2}, "VND": {"₫", 0},
	"CHF": {"CHF ", 2}, "CLP": {"CLP ", 0}, "ISK": {"ISK ", 0}, "BHD": {"BHD ", 3},
	"KWD": {"KWD ", 3}, "OMR": {"OMR ", 3}, "JOD": {"JOD ", 3}, "TND": {"TND ", 3},
}

// formatCurrency accepts (amount, code) and (code, amount), so both {{currency .total "EUR"}}
// and {{.total | currency "EUR"}} work.
func formatCurrency(a, b any) (string, error) {
	code, amount := a, b
	if s, ok := a.(string); !ok || !isCurrencyCode(s) {
		code, amount = b, a
	}
	c, _ := code.(string)
	if !isCurrencyCode(c) {
		return "", fmt.Errorf("currency: need an amount and a three-letter ISO 4217 code such as \"EUR\", got %v and %v", a, b)
	}
	d, err := decimal(amount)
	if err != nil {
		return "", fmt.Errorf("currency: %w", err)
	}
	f, ok := currencies[c]
	if !ok {
		f = currencyFormat{c + " ", 2}
	}
	s := groupDecimal(d, f.decimals)
	if strings.HasPrefix(s, "-") {
		return "-" + f.symbol + s[1:], nil
	}
	return f.symbol + s, nil
}

func isCurrencyCode(s string) bool {
	return len(s) == 3 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z' && 'A' <= s[2] && s[2] <= 'Z'
}
