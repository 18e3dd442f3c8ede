package render

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template/parse"
)

// The direct executor runs a part's parse trees the way text/template's executor does, for
// the subset of templates postie's data and functions make common, without reflection: the
// data is decoded JSON (map[string]any, []any, string, json.Number, bool, nil), so a field is
// a map lookup and a function is a Go call. For the html part it runs the trees html/template
// has escaped (escaper calls added to every action, text nodes rewritten), so the escaping
// decisions stay html/template's; only the escapers' code is repeated here (escapeHTML,
// filterURL, processURL), and exec_test.go checks it against html/template's.
//
// It is an accelerator, never a second opinion. A part whose trees use anything it does not
// know (break, continue, method chains, functions outside directFuncs, templates that
// html/template derived for another context) is not run by it at all. At run time, anything
// it is not sure to do exactly as text/template would (a value of another type, a missing
// key, a wrong argument, a function's error) stops it with errIndirect, and Render runs the
// part again with the standard executor, which produces the output or the error with its
// position. The output and budget errors (ErrOutputLimit, ErrTimeout, the context's error)
// are reported as they are.

// errIndirect stops the direct executor: the part must run through text/template.
var errIndirect = errors.New("render: run by text/template")

// program is one part's trees, ready for the direct executor. It is read-only.
type program struct {
	root  *parse.Tree
	trees map[string]*parse.Tree
	html  bool // print only strings (every html action ends with an escaper)
}

// newProgram returns the program of root and the trees it calls (found with lookup), or nil
// when the direct executor cannot run them.
func newProgram(root *parse.Tree, lookup func(name string) *parse.Tree, html bool) *program {
	p := &program{root: root, trees: map[string]*parse.Tree{}, html: html}
	var ok func(t *parse.Tree) bool
	ok = func(t *parse.Tree) bool {
		if t == nil || t.Root == nil {
			return false
		}
		good := true
		walkNodes(t.Root, func(n parse.Node) {
			switch n := n.(type) {
			case *parse.BreakNode, *parse.ContinueNode, *parse.ChainNode:
				good = false
			case *parse.IdentifierNode:
				if directFuncs[n.Ident] == nil {
					good = false
				}
			case *parse.TemplateNode:
				if _, seen := p.trees[n.Name]; seen {
					return
				}
				called := lookup(n.Name)
				p.trees[n.Name] = called
				if !ok(called) {
					good = false
				}
			}
		})
		return good
	}
	if !ok(root) {
		return nil
	}
	return p
}

// variable is a $name in scope.
type variable struct {
	name  string
	value any
}

// executor runs programs for one instance; it is reused from render to render.
type executor struct {
	st      *state
	w       *limitedBuffer
	prog    *program
	vars    []variable // the variables in scope, from frame on
	frame   int        // where the executing template's variables start in vars
	args    []any      // a stack of function arguments
	scratch []byte     // an escaped value before it is written
}

// run executes p with dot as data into w.
func (e *executor) run(p *program, w *limitedBuffer, dot any) error {
	e.prog, e.w, e.frame = p, w, 0
	e.vars = append(e.vars[:0], variable{"$", dot})
	err := e.walk(dot, p.root.Root)
	e.prog, e.w = nil, nil
	e.pop(0)
	clear(e.args[:cap(e.args)])
	e.args = e.args[:0]
	return err
}

func (e *executor) walk(dot any, node parse.Node) error {
	switch n := node.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			if err := e.walk(dot, c); err != nil {
				return err
			}
		}
		return nil
	case *parse.TextNode:
		_, err := e.w.Write(n.Text)
		return err
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 {
			return e.print(dot, n.Pipe)
		}
		_, err := e.pipeline(dot, n.Pipe)
		return err
	case *parse.IfNode:
		return e.ifOrWith(dot, &n.BranchNode, false)
	case *parse.WithNode:
		return e.ifOrWith(dot, &n.BranchNode, true)
	case *parse.RangeNode:
		return e.rangeNode(dot, n)
	case *parse.TemplateNode:
		return e.template(dot, n)
	case *parse.CommentNode:
		return nil
	}
	return errIndirect
}

func (e *executor) ifOrWith(dot any, b *parse.BranchNode, with bool) error {
	mark := len(e.vars)
	defer e.pop(mark)
	v, err := e.pipeline(dot, b.Pipe)
	if err != nil {
		return err
	}
	truth, ok := isTrue(v)
	if !ok {
		return errIndirect
	}
	switch {
	case truth && with:
		return e.walk(v, b.List)
	case truth:
		return e.walk(dot, b.List)
	case b.ElseList != nil:
		return e.walk(dot, b.ElseList)
	}
	return nil
}

func (e *executor) rangeNode(dot any, r *parse.RangeNode) error {
	mark := len(e.vars)
	defer e.pop(mark)
	v, err := e.pipeline(dot, r.Pipe)
	if err != nil {
		return err
	}
	inner := len(e.vars)
	iteration := func(index, elem any) error {
		if len(r.Pipe.Decl) > 0 {
			if r.Pipe.IsAssign {
				return errIndirect
			}
			e.vars[len(e.vars)-1].value = elem
			if len(r.Pipe.Decl) > 1 {
				e.vars[len(e.vars)-2].value = index
			}
		}
		err := e.walk(elem, r.List)
		e.pop(inner)
		return err
	}
	n := 0
	switch v := v.(type) {
	case []any:
		n = len(v)
		for i, elem := range v {
			if err := iteration(i, elem); err != nil {
				return err
			}
		}
	case map[string]any:
		n = len(v)
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if err := iteration(k, v[k]); err != nil {
				return err
			}
		}
	case nil:
	default:
		return errIndirect
	}
	if n == 0 && r.ElseList != nil {
		return e.walk(dot, r.ElseList)
	}
	return nil
}

func (e *executor) template(dot any, t *parse.TemplateNode) error {
	tree := e.prog.trees[t.Name]
	if tree == nil {
		return errIndirect
	}
	var newDot any
	if t.Pipe != nil {
		var err error
		if newDot, err = e.pipeline(dot, t.Pipe); err != nil {
			return err
		}
	}
	// The called template sees only its own variables: a new frame.
	frame, mark := e.frame, len(e.vars)
	e.frame = mark
	e.vars = append(e.vars, variable{"$", newDot})
	err := e.walk(newDot, tree.Root)
	e.pop(mark)
	e.frame = frame
	return err
}

func (e *executor) pop(mark int) {
	clear(e.vars[mark:])
	e.vars = e.vars[:mark]
}

// print writes the value of an action. In the html part, an action that ends with one of the
// escapers of HTML text and attributes is escaped straight into the output, after the URL
// escapers before it, if any.
func (e *executor) print(dot any, pipe *parse.PipeNode) error {
	if n := escaperSuffix(pipe); e.prog.html && n > 0 && n < len(pipe.Cmds) {
		v, err := e.commands(dot, pipe.Cmds[:len(pipe.Cmds)-n])
		if err != nil {
			return err
		}
		s, ok := stringify(v)
		if !ok {
			return errIndirect
		}
		for _, c := range pipe.Cmds[len(pipe.Cmds)-n : len(pipe.Cmds)-1] {
			s = escapers[c.Args[0].(*parse.IdentifierNode).Ident].escape(s)
		}
		e.scratch = appendEscapedHTML(e.scratch[:0], s)
		_, err = e.w.Write(e.scratch)
		return err
	}
	v, err := e.pipeline(dot, pipe)
	if err != nil {
		return err
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case bool:
		if e.prog.html {
			return errIndirect
		}
		s = strconv.FormatBool(v)
	default:
		return errIndirect
	}
	e.scratch = append(e.scratch[:0], s...)
	_, err = e.w.Write(e.scratch)
	return err
}

func (e *executor) pipeline(dot any, pipe *parse.PipeNode) (any, error) {
	if pipe == nil {
		return nil, errIndirect
	}
	v, err := e.commands(dot, pipe.Cmds)
	if err != nil {
		return nil, err
	}
	for _, d := range pipe.Decl {
		if pipe.IsAssign {
			if !e.setVar(d.Ident[0], v) {
				return nil, errIndirect
			}
		} else {
			e.vars = append(e.vars, variable{d.Ident[0], v})
		}
	}
	return v, nil
}

func (e *executor) commands(dot any, cmds []*parse.CommandNode) (any, error) {
	var v any
	for i, c := range cmds {
		var err error
		if v, err = e.command(dot, c, v, i > 0); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (e *executor) setVar(name string, v any) bool {
	for i := len(e.vars) - 1; i >= e.frame; i-- {
		if e.vars[i].name == name {
			e.vars[i].value = v
			return true
		}
	}
	return false
}

func (e *executor) variable(name string) (any, bool) {
	for i := len(e.vars) - 1; i >= e.frame; i-- {
		if e.vars[i].name == name {
			return e.vars[i].value, true
		}
	}
	return nil, false
}

// command evaluates one command of a pipeline; final is the previous command's value when
// hasFinal.
func (e *executor) command(dot any, c *parse.CommandNode, final any, hasFinal bool) (any, error) {
	if id, ok := c.Args[0].(*parse.IdentifierNode); ok {
		return e.call(dot, id.Ident, c.Args[1:], final, hasFinal)
	}
	if len(c.Args) > 1 || hasFinal {
		return nil, errIndirect // arguments to a value: text/template's error
	}
	return e.arg(dot, c.Args[0])
}

// arg evaluates an argument or a command without arguments.
func (e *executor) arg(dot any, n parse.Node) (any, error) {
	switch n := n.(type) {
	case *parse.FieldNode:
		return fieldChain(dot, n.Ident)
	case *parse.VariableNode:
		v, ok := e.variable(n.Ident[0])
		if !ok {
			return nil, errIndirect
		}
		return fieldChain(v, n.Ident[1:])
	case *parse.DotNode:
		return dot, nil
	case *parse.StringNode:
		return n.Text, nil
	case *parse.BoolNode:
		return n.True, nil
	case *parse.NumberNode:
		// text/template makes a constant complex128 when it is complex (0i is also an int to
		// the parser), float64 when it is written as a float, and int otherwise.
		if n.IsInt && !n.IsComplex && !strings.ContainsAny(n.Text, ".eEpP") && int64(int(n.Int64)) == n.Int64 {
			return int(n.Int64), nil
		}
	case *parse.PipeNode:
		return e.pipeline(dot, n)
	case *parse.IdentifierNode:
		return e.call(dot, n.Ident, nil, nil, false)
	}
	return nil, errIndirect
}

// fieldChain follows .a.b.c through maps; a missing key or a receiver that is not an object
// is text/template's error to report.
func fieldChain(v any, idents []string) (any, error) {
	for _, id := range idents {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errIndirect
		}
		if v, ok = m[id]; !ok {
			return nil, errIndirect
		}
	}
	return v, nil
}

func (e *executor) call(dot any, name string, argNodes []parse.Node, final any, hasFinal bool) (any, error) {
	f := directFuncs[name]
	if f == nil {
		return nil, errIndirect
	}
	base := len(e.args)
	defer func() { e.args = e.args[:base] }()
	for _, n := range argNodes {
		v, err := e.arg(dot, n) // calls in the arguments push and pop above base
		if err != nil {
			return nil, err
		}
		e.args = append(e.args, v)
	}
	if hasFinal {
		e.args = append(e.args, final)
	}
	v, err := f(e.st, e.args[base:len(e.args):len(e.args)])
	if err != nil && err != e.st.err {
		return nil, errIndirect // the function's own error: text/template reports it with its position
	}
	return v, err
}

// isTrue is text/template's truth for decoded JSON; ok is false for other types.
func isTrue(v any) (truth, ok bool) {
	switch v := v.(type) {
	case nil:
		return false, true
	case string:
		return v != "", true
	case json.Number:
		return v != "", true
	case bool:
		return v, true
	case map[string]any:
		return len(v) > 0, true
	case []any:
		return len(v) > 0, true
	case int:
		return v != 0, true
	}
	return false, false
}

// stringify is how html/template's escapers see a value (fmt.Sprint of it, nil as nothing),
// for the types the direct executor handles.
func stringify(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return string(v), true
	case nil:
		return "", true
	case bool:
		return strconv.FormatBool(v), true
	case int:
		return strconv.Itoa(v), true
	}
	return "", false
}

// directFunc is a template function for the direct executor: it receives the evaluated
// arguments (the previous command's value last) and returns errIndirect for arguments
// text/template would convert or refuse.
type directFunc func(st *state, args []any) (any, error)

// escapers are html/template's escapers the direct executor runs itself, for plain text (what
// stringify gives). Those of HTML text and attributes (htmlEscaper, attrEscaper, rcdataEscaper
// with htmlReplacementTable) all replace the same seven characters; the others are those of
// URLs (url set).
var escapers = map[string]struct {
	escape func(string) string
	url    bool
}{
	"_html_template_htmlescaper":   {escapeHTML, false},
	"_html_template_attrescaper":   {escapeHTML, false},
	"_html_template_rcdataescaper": {escapeHTML, false},
	"_html_template_urlfilter":     {filterURL, true},
	"_html_template_urlnormalizer": {func(s string) string { return processURL(s, true) }, true},
	"_html_template_urlescaper":    {func(s string) string { return processURL(s, false) }, true},
}

// escaperSuffix returns how many commands at the end of pipe are URL escapers followed by an
// HTML escaper, each with no argument but the previous command's value; 0 when the pipeline
// does not end with an HTML escaper.
func escaperSuffix(pipe *parse.PipeNode) int {
	n := 0
	for i := len(pipe.Cmds) - 1; i >= 0; i-- {
		c := pipe.Cmds[i]
		id, ok := c.Args[0].(*parse.IdentifierNode)
		if !ok || len(c.Args) != 1 {
			break
		}
		if esc, ok := escapers[id.Ident]; !ok || esc.url != (n > 0) {
			break
		}
		n++
	}
	return n
}

// directFuncs are the functions the direct executor calls itself: the escapers and these.
var directFuncs = withEscapers(map[string]directFunc{
	fnValue: func(st *state, args []any) (any, error) {
		if len(args) != 1 {
			return nil, errIndirect
		}
		return printable(args[0]), st.check()
	},
	fnTick: func(st *state, args []any) (any, error) {
		if len(args) != 0 {
			return nil, errIndirect
		}
		return "", st.check()
	},
	"default": func(st *state, args []any) (any, error) {
		if len(args) != 2 {
			return nil, errIndirect
		}
		return st.defaultValue(args[0], args[1])
	},
	"index": func(st *state, args []any) (any, error) {
		if len(args) == 0 || args[0] == nil {
			return nil, errIndirect // text/template: "index of untyped nil"
		}
		v := args[0]
		for _, k := range args[1:] {
			switch c := v.(type) {
			case map[string]any:
				key, ok := k.(string)
				if !ok {
					return nil, errIndirect
				}
				v = c[key] // a missing key is the zero value: nil
			case []any:
				i, ok := k.(int)
				if !ok || i < 0 || i >= len(c) {
					return nil, errIndirect
				}
				v = c[i]
			default:
				return nil, errIndirect
			}
		}
		return v, nil
	},
	"date": func(st *state, args []any) (any, error) {
		if len(args) < 2 {
			return nil, errIndirect
		}
		layout, ok := args[0].(string)
		if !ok {
			return nil, errIndirect
		}
		return st.date(layout, args[1], args[2:])
	},
	"number": func(st *state, args []any) (any, error) {
		if len(args) == 0 {
			return nil, errIndirect
		}
		decimals := make([]int, 0, 1)
		for _, a := range args[1:] {
			n, ok := a.(int)
			if !ok {
				return nil, errIndirect
			}
			decimals = append(decimals, n)
		}
		if err := st.check(); err != nil {
			return nil, err
		}
		return formatNumber(args[0], decimals)
	},
	"currency": func(st *state, args []any) (any, error) {
		if len(args) != 2 {
			return nil, errIndirect
		}
		if err := st.check(); err != nil {
			return nil, err
		}
		return formatCurrency(args[0], args[1])
	},
	"truncate": func(st *state, args []any) (any, error) {
		n, ok := args0(args, 2).(int)
		if !ok {
			return nil, errIndirect
		}
		return truncate(n, toString(args[1])), st.check()
	},
	"join": func(st *state, args []any) (any, error) {
		sep, ok := args0(args, 2).(string)
		if !ok {
			return nil, errIndirect
		}
		s, err := join(sep, args[1])
		if err != nil {
			return nil, err
		}
		return s, st.check()
	},
	// Go's builtins, for the types of decoded JSON.
	"not": func(_ *state, args []any) (any, error) {
		truth, ok := isTrue(args0(args, 1))
		if !ok {
			return nil, errIndirect
		}
		return !truth, nil
	},
	"and": andOr(false),
	"or":  andOr(true),
	"len": func(_ *state, args []any) (any, error) {
		switch v := args0(args, 1).(type) {
		case string:
			return len(v), nil
		case json.Number:
			return len(v), nil
		case []any:
			return len(v), nil
		case map[string]any:
			return len(v), nil
		}
		return nil, errIndirect
	},
	"eq": func(_ *state, args []any) (any, error) {
		if len(args) < 2 {
			return nil, errIndirect
		}
		for _, b := range args[1:] {
			equal, ok := equal(args[0], b)
			if !ok {
				return nil, errIndirect
			}
			if equal {
				return true, nil
			}
		}
		return false, nil
	},
	"ne": func(_ *state, args []any) (any, error) {
		if len(args) != 2 {
			return nil, errIndirect
		}
		equal, ok := equal(args[0], args[1])
		if !ok {
			return nil, errIndirect
		}
		return !equal, nil
	},
	"upper": directString(strings.ToUpper),
	"lower": directString(strings.ToLower),
	"title": directString(title),
	"trim":  directString(strings.TrimSpace),
	"unsubscribe_url": func(st *state, args []any) (any, error) {
		if len(args) != 0 {
			return nil, errIndirect
		}
		return st.unsubscribeURL(), nil
	},
	"preferences_url": func(st *state, args []any) (any, error) {
		if len(args) != 0 {
			return nil, errIndirect
		}
		return st.preferencesURL(), nil
	},
})

// withEscapers adds the escapers to funcs, each taking one value.
func withEscapers(funcs map[string]directFunc) map[string]directFunc {
	for name, esc := range escapers {
		funcs[name] = escaper(esc.escape)
	}
	return funcs
}

// args0 returns args[0] when there are n arguments, and a value no function accepts
// otherwise.
func args0(args []any, n int) any {
	if len(args) != n {
		return errIndirect
	}
	return args[0]
}

// andOr is the builtin and (the first false argument, or the last) or or (the first true one,
// or the last). text/template evaluates the arguments only as far as it needs them; here they
// are all evaluated first, so an error in one that text/template would not evaluate only
// sends the part to text/template.
func andOr(or bool) directFunc {
	return func(_ *state, args []any) (any, error) {
		if len(args) == 0 {
			return nil, errIndirect
		}
		for _, a := range args[:len(args)-1] {
			truth, ok := isTrue(a)
			if !ok {
				return nil, errIndirect
			}
			if truth == or {
				return a, nil
			}
		}
		return args[len(args)-1], nil
	}
}

// equal is the builtin eq for two values of decoded JSON: strings and JSON numbers compare
// as strings (both are of string kind), bools and ints with their own kind; ok is false for
// any other pair, which text/template compares or refuses.
func equal(a, b any) (equal, ok bool) {
	as, aString := stringKind(a)
	bs, bString := stringKind(b)
	switch {
	case aString && bString:
		return as == bs, true
	case aString || bString:
		return false, false
	}
	switch a := a.(type) {
	case bool:
		if b, isBool := b.(bool); isBool {
			return a == b, true
		}
	case int:
		if b, isInt := b.(int); isInt {
			return a == b, true
		}
	}
	return false, false
}

func stringKind(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return string(v), true
	}
	return "", false
}

func escaper(f func(string) string) directFunc {
	return func(_ *state, args []any) (any, error) {
		if len(args) != 1 {
			return nil, errIndirect
		}
		s, ok := stringify(args[0])
		if !ok {
			return nil, errIndirect
		}
		return f(s), nil
	}
}

func directString(f func(string) string) directFunc {
	return func(st *state, args []any) (any, error) {
		if len(args) != 1 {
			return nil, errIndirect
		}
		return f(toString(args[0])), st.check()
	}
}

// escapeHTML is html/template's htmlEscaper, attrEscaper and rcdataEscaper for plain text
// (appendEscapedHTML).
func escapeHTML(s string) string { return string(appendEscapedHTML(nil, s)) }

// appendEscapedHTML appends s to b as html/template's htmlEscaper, attrEscaper and
// rcdataEscaper write plain text: NUL, ", &, ', +, < and > replaced, every other byte kept
// (the table has no other entries below utf8.RuneSelf, and multi-byte runes are left alone).
func appendEscapedHTML(b []byte, s string) []byte {
	written := 0
	for i := 0; i < len(s); i++ {
		if !htmlSpecial[s[i]] {
			continue
		}
		var repl string
		switch s[i] {
		case 0:
			repl = "\uFFFD"
		case '"':
			repl = "&#34;"
		case '&':
			repl = "&amp;"
		case '\'':
			repl = "&#39;"
		case '+':
			repl = "&#43;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		default:
			continue
		}
		b = append(b, s[written:i]...)
		b = append(b, repl...)
		written = i + 1
	}
	return append(b, s[written:]...)
}

// htmlSpecial marks the bytes appendEscapedHTML replaces.
var htmlSpecial = [256]bool{0: true, '"': true, '&': true, '\'': true, '+': true, '<': true, '>': true}

// filterURL is html/template's urlFilter: a URL with a scheme other than http, https and
// mailto becomes "#ZgotmplZ".
func filterURL(s string) string {
	if protocol, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(protocol, "/") {
		if !strings.EqualFold(protocol, "http") && !strings.EqualFold(protocol, "https") && !strings.EqualFold(protocol, "mailto") {
			return "#ZgotmplZ"
		}
	}
	return s
}

// processURL is html/template's urlNormalizer (norm) and urlEscaper: bytes outside the
// unreserved set (and, when normalizing, outside the reserved set and valid %XX escapes) are
// percent-encoded. It returns s itself when nothing needs encoding.
func processURL(s string, norm bool) string {
	var b []byte
	written := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '!', '#', '$', '&', '*', '+', ',', '/', ':', ';', '=', '?', '@', '[', ']':
			if norm {
				continue
			}
		case '-', '.', '_', '~':
			continue
		case '%':
			if norm && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				continue
			}
		default:
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
				continue
			}
		}
		if b == nil {
			b = make([]byte, 0, len(s)+16)
		}
		b = append(b, s[written:i]...)
		b = append(b, '%', lowerHex[c>>4], lowerHex[c&15])
		written = i + 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[written:]...))
}

const lowerHex = "0123456789abcdef"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
