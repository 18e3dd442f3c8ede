package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
)

// Source is one template as saved (one version, one locale).
type Source struct {
	Name    string
	Subject string          // text/template
	HTML    string          // html/template; may be empty when Text is set
	Text    string          // text/template; optional (generated from HTML when empty)
	Layout  string          // name of a layout template wrapping this one; "" for none
	Schema  json.RawMessage // JSON Schema for data; nil/empty = any JSON object
}

// Layouts resolves a layout name to its Source. When there is no such layout it returns an
// error wrapping ErrNotFound.
type Layouts func(name string) (Source, error)

// MaxLayoutDepth is how many layouts may wrap a template (a layout of a layout of …).
const MaxLayoutDepth = 8

// part is one of a template's three parts.
type part int

const (
	partSubject part = iota
	partHTML
	partText
)

var partNames = [...]string{"subject", "html", "text"}

func (p part) String() string { return partNames[p] }

func (s *Source) part(p part) string {
	switch p {
	case partSubject:
		return s.Subject
	case partHTML:
		return s.HTML
	}
	return s.Text
}

// contentName is the template a layout calls to place the content it wraps.
const contentName = "content"

// emptyName is the internal name of the empty template "content" means in the innermost
// template of a part (a layout compiled on its own, for a preview).
const emptyName = "-empty"

// partSet is one part (subject, html or text) compiled: the parse trees of every level of the
// layout chain and their {{define}}d templates under internal names, linked so that executing
// root runs the outermost layout, whose {{template "content" .}} runs the next level in.
//
// Internal names are "<level>" for a level's main template and "<level>:<name>" for its
// {{define}}s, so two layouts may define templates of the same name. Trees keep ParseName,
// the name of the Source they were parsed from, which is what error locations show.
type partSet struct {
	part  part
	root  string
	names []string // in a fixed order: root first
	trees map[string]*parse.Tree
	// levels maps an internal level number to the Source name, for error messages.
	levels []string
}

// Compile parses and checks a Source and its layout chain (a missing layout or a cycle is an
// error), compiles the schema, and inlines CSS into the HTML source where the template allows
// it (see inline_template.go). Every problem is an *Error, or Errors when there are several; a
// failing Layouts function other than ErrNotFound is returned wrapped, not as an *Error.
//
// The result is immutable and safe for concurrent use; callers cache it per (name, version,
// locale), since compiling costs far more than rendering.
func Compile(src Source, layouts Layouts) (*Template, error) {
	return compile(src, layouts, false)
}

// compile is Compile; perRender skips inlining CSS into the source, for tests that compare
// the two ways.
func compile(src Source, layouts Layouts, perRender bool) (*Template, error) {
	if src.Name == "" {
		src.Name = "template"
	}
	chain, err := layoutChain(src, layouts)
	if err != nil {
		return nil, err
	}
	t := &Template{name: src.Name, zones: map[string]*time.Location{}}
	var errs Errors
	if src.HTML == "" && src.Text == "" {
		errs = append(errs, errorf("html", "a template needs html, text or both"))
	}
	for _, s := range chain {
		for p := partSubject; p <= partText; p++ {
			if n := len(s.part(p)); n > MaxSourceSize {
				e := errorf(p.String(), "%s is %s; the limit is %s", p, size(n), size(MaxSourceSize))
				if s.Name != src.Name {
					e.Field, e.Template = "layout", s.Name
				}
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errorsOrNil(errs)
	}
	if t.schema, err = compileSchema(src.Schema); err != nil {
		errs = append(errs, List(err)...)
	}
	sets := [3]*partSet{}
	for p := partSubject; p <= partText; p++ {
		set, err := t.compilePart(p, chain)
		if err != nil {
			errs = append(errs, List(err)...)
		}
		sets[p] = set
	}
	if len(errs) > 0 {
		return nil, errorsOrNil(errs)
	}
	t.subject, t.html, t.text = sets[partSubject], sets[partHTML], sets[partText]
	// The first instance is made now: html/template checks contexts (an action inside an
	// unquoted attribute, a branch ending inside a tag) only when it first executes, and those
	// errors belong to Compile, not to the first message. It checks the html as written, so
	// that what is accepted does not depend on how the CSS is inlined.
	inst, err := t.newInstance()
	if err != nil {
		return nil, err
	}
	if t.html != nil {
		t.conds = protectConditionals(t.html)
		if perRender {
			t.css, t.notes = perRenderPlan(t.html, nil, "asked for")
		} else {
			t.inlineIntoSource()
		}
		if inst, err = t.newInstance(); err != nil {
			return nil, err
		}
	}
	t.free = append(t.free, inst)
	return t, nil
}

// inlineIntoSource inlines the html's CSS into a copy of its trees when that is exact (see
// planCSS) and html/template accepts the result, and otherwise plans inlining per render.
func (t *Template) inlineIntoSource() {
	original := t.html
	inlined := original.clone()
	t.css, t.notes = planCSS(inlined)
	if t.css != nil {
		return // nothing was inlined into the copy
	}
	t.html = inlined
	if _, err := t.newInstance(); err != nil {
		t.html = original
		t.css, t.notes = perRenderPlan(original, t.notes, "html/template rejects the source once inlined: "+err.Error())
	}
}

// clone returns a deep copy of set, for changes that may be abandoned.
func (set *partSet) clone() *partSet {
	c := *set
	c.names = slices.Clone(set.names)
	c.trees = make(map[string]*parse.Tree, len(set.trees))
	for name, tree := range set.trees {
		c.trees[name] = tree.Copy()
	}
	return &c
}

// layoutChain returns src followed by its layout, the layout's layout, and so on.
func layoutChain(src Source, layouts Layouts) ([]Source, error) {
	chain := []Source{src}
	seen := map[string]bool{src.Name: true}
	for cur := src; cur.Layout != ""; {
		name := cur.Layout
		if seen[name] {
			return nil, &Error{Field: "layout", Template: cur.Name,
				Message: fmt.Sprintf("layout %q includes itself (%s)", name, chainNames(chain, name))}
		}
		if len(chain) > MaxLayoutDepth {
			return nil, &Error{Field: "layout", Message: fmt.Sprintf("more than %d nested layouts", MaxLayoutDepth)}
		}
		if layouts == nil {
			return nil, &Error{Field: "layout", Template: cur.Name, Err: ErrNotFound,
				Message: fmt.Sprintf("layout %q does not exist", name)}
		}
		next, err := layouts(name)
		if errors.Is(err, ErrNotFound) {
			return nil, &Error{Field: "layout", Template: cur.Name, Err: err,
				Message: fmt.Sprintf("layout %q does not exist", name)}
		}
		if err != nil {
			return nil, fmt.Errorf("render: layout %q: %w", name, err)
		}
		next.Name = name
		seen[name] = true
		chain = append(chain, next)
		cur = next
	}
	return chain, nil
}

func chainNames(chain []Source, last string) string {
	names := make([]string, 0, len(chain)+1)
	for _, s := range chain {
		names = append(names, s.Name)
	}
	return strings.Join(append(names, last), " → ")
}

// compilePart parses part p of every level of the chain that has it, links the levels, checks
// template references, and prepares the trees for execution (hidden calls added, literal time
// zones resolved). It returns nil, nil when the template has no such part.
func (t *Template) compilePart(p part, chain []Source) (*partSet, error) {
	if chain[0].part(p) == "" {
		return nil, nil
	}
	set := &partSet{part: p, trees: map[string]*parse.Tree{}}
	proto := funcs(&state{})
	for i := range chain {
		s := &chain[i]
		text := s.part(p)
		if i > 0 && text == "" {
			continue // this layout does not wrap this part
		}
		level := len(set.levels)
		set.levels = append(set.levels, s.Name)
		fieldErr := func(e *Error) *Error {
			e.Template = s.Name
			if i > 0 {
				e.Field = "layout"
				e.Message = p.String() + ": " + e.Message
			} else {
				e.Field = p.String()
			}
			return e
		}
		tm, err := texttemplate.New(s.Name).Funcs(proto).Parse(text)
		if err != nil {
			return nil, fieldErr(parseError(s.Name, err))
		}
		// The level's own templates, by the names its source uses.
		local := map[string]*parse.Tree{}
		for _, d := range tm.Templates() {
			if d.Tree == nil {
				continue
			}
			if d.Name() == s.Name {
				local[""] = d.Tree
				continue
			}
			if d.Name() == contentName {
				line, col := position(d.Tree, d.Tree.Root)
				return nil, fieldErr(&Error{Line: line, Column: col,
					Message: `"content" is the name of the template a layout wraps; it cannot be defined`})
			}
			local[d.Name()] = d.Tree
		}
		if local[""] == nil {
			local[""] = &parse.Tree{Name: s.Name, ParseName: s.Name, Root: &parse.ListNode{NodeType: parse.NodeList}}
		}
		internal := func(name string) string {
			if name == "" {
				return strconv.Itoa(level)
			}
			return strconv.Itoa(level) + ":" + name
		}
		callsContent := false
		for _, name := range sortedKeys(local) {
			tree := local[name]
			var werr *Error
			walkNodes(tree.Root, func(n parse.Node) {
				if werr != nil {
					return
				}
				switch n := n.(type) {
				case *parse.TemplateNode:
					switch {
					case n.Name == contentName && level == 0:
						n.Name = emptyName
					case n.Name == contentName:
						n.Name = strconv.Itoa(level - 1)
						callsContent = true
					case local[n.Name] != nil && n.Name != "":
						n.Name = internal(n.Name)
					default:
						line, col := position(tree, n)
						werr = fieldErr(&Error{Line: line, Column: col, Message: fmt.Sprintf("template %q is not defined", n.Name)})
					}
				case *parse.CommandNode:
					if err := t.resolveZone(tree, n); err != nil {
						werr = fieldErr(err)
					}
				}
			})
			if werr != nil {
				return nil, werr
			}
			tree.Name = internal(name)
			set.trees[tree.Name] = tree
			set.names = append(set.names, tree.Name)
		}
		if i > 0 && !callsContent {
			return nil, fieldErr(&Error{Message: `the layout does not include {{template "content" .}}`})
		}
	}
	set.root = strconv.Itoa(len(set.levels) - 1)
	if err := set.checkRecursion(); err != nil {
		return nil, err
	}
	set.trees[emptyName] = &parse.Tree{Name: emptyName, ParseName: emptyName, Root: &parse.ListNode{NodeType: parse.NodeList}}
	set.names = append(set.names, emptyName)
	// Root first: it is the template the instance executes.
	for i, n := range set.names {
		if n == set.root {
			set.names[0], set.names[i] = set.names[i], set.names[0]
		}
	}
	for _, name := range set.names {
		addHiddenCalls(set.trees[name], p == partHTML)
	}
	return set, nil
}

// checkRecursion refuses templates that call themselves, directly or through others: the
// executor would go 100,000 calls deep before giving up, with a stack to match.
func (set *partSet) checkRecursion() error {
	calls := map[string][]*parse.TemplateNode{}
	for name, tree := range set.trees {
		walkNodes(tree.Root, func(n parse.Node) {
			if tn, ok := n.(*parse.TemplateNode); ok {
				calls[name] = append(calls[name], tn)
			}
		})
	}
	const (
		unvisited = iota
		active
		done
	)
	mark := map[string]int{}
	var visit func(name string) *Error
	visit = func(name string) *Error {
		mark[name] = active
		for _, tn := range calls[name] {
			switch mark[tn.Name] {
			case active:
				tree := set.trees[name]
				line, col := position(tree, tn)
				field, msg := set.part.String(), fmt.Sprintf("template %q calls itself; recursion is not allowed", displayName(tn.Name, set))
				if tree.ParseName != set.levels[0] {
					field, msg = "layout", set.part.String()+": "+msg
				}
				return &Error{Field: field, Template: tree.ParseName, Line: line, Column: col, Message: msg}
			case unvisited:
				if err := visit(tn.Name); err != nil {
					return err
				}
			}
		}
		mark[name] = done
		return nil
	}
	for _, name := range sortedKeys(set.trees) {
		if mark[name] == unvisited {
			if err := visit(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// displayName turns an internal template name back into the name the source used.
func displayName(internal string, set *partSet) string {
	if set == nil {
		return internal
	}
	_, name, ok := strings.Cut(internal, ":")
	if !ok {
		if n, err := strconv.Atoi(internal); err == nil && n < len(set.levels) {
			return set.levels[n]
		}
		return internal
	}
	return name
}

// resolveZone loads the time zone named literally in {{date LAYOUT VALUE "Europe/Paris"}}, so
// that rendering never reads the zone database. An unknown zone is an error now.
func (t *Template) resolveZone(tree *parse.Tree, cmd *parse.CommandNode) *Error {
	if len(cmd.Args) != 4 {
		return nil
	}
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	if !ok || id.Ident != "date" {
		return nil
	}
	s, ok := cmd.Args[3].(*parse.StringNode)
	if !ok || s.Text == "" {
		return nil
	}
	if _, ok := fixedZone(s.Text); ok {
		return nil
	}
	loc, err := time.LoadLocation(s.Text)
	if err != nil {
		line, col := position(tree, s)
		return &Error{Line: line, Column: col, Message: fmt.Sprintf("unknown time zone %q", s.Text)}
	}
	t.zones[s.Text] = loc
	return nil
}

// hiddenSource holds the nodes addHiddenCalls copies into trees. They are parsed from source
// rather than built by hand so that they carry a tree for error positions.
const hiddenSource = "{{$__tick := " + fnTick + "}}{{" + fnValue + "}}"

// addHiddenCalls prepares a tree for execution under a budget:
//
//   - every range body starts with {{$__tick := __tick}}, a declaration (so it prints nothing
//     and html/template leaves it alone) whose call checks the time budget on every iteration:
//     a loop that prints nothing still stops at the deadline;
//   - in text templates (subject and text), every printing action ends with | __v, which
//     prints nil (a JSON null, a missing index) as nothing instead of "<no value>".
//     html/template already prints nil as nothing, and Render gives numbers to both in plain
//     decimal notation (see plainNumbers), so html actions stay as written: each added call
//     would cost a reflective call per printed value.
func addHiddenCalls(tree *parse.Tree, html bool) {
	trees, err := parse.Parse("hidden", hiddenSource, "", "", map[string]any{fnTick: true, fnValue: true})
	if err != nil {
		panic("render: hidden calls do not parse: " + err.Error())
	}
	nodes := trees["hidden"].Root.Nodes
	tick := nodes[0].(*parse.ActionNode)
	value := nodes[1].(*parse.ActionNode).Pipe.Cmds[0]
	walkNodes(tree.Root, func(n parse.Node) {
		switch n := n.(type) {
		case *parse.RangeNode:
			if n.List != nil {
				n.List.Nodes = append([]parse.Node{tick.Copy()}, n.List.Nodes...)
			}
		case *parse.ActionNode:
			if !html && len(n.Pipe.Decl) == 0 {
				n.Pipe.Cmds = append(n.Pipe.Cmds, value.Copy().(*parse.CommandNode))
			}
		}
	})
}

// walkNodes calls f on n and every node below it, parents before children. Nodes f adds to a
// list it is visiting are visited too, so callers add only nodes f ignores.
func walkNodes(n parse.Node, f func(parse.Node)) {
	if n == nil {
		return
	}
	f(n)
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkNodes(c, f)
		}
	case *parse.ActionNode:
		walkNodes(n.Pipe, f)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkNodes(c, f)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkNodes(a, f)
		}
	case *parse.IfNode:
		walkBranch(&n.BranchNode, f)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, f)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, f)
	case *parse.TemplateNode:
		walkNodes(n.Pipe, f)
	case *parse.ChainNode:
		walkNodes(n.Node, f)
	}
}

func walkBranch(b *parse.BranchNode, f func(parse.Node)) {
	walkNodes(b.Pipe, f)
	if b.List != nil {
		walkNodes(b.List, f)
	}
	if b.ElseList != nil {
		walkNodes(b.ElseList, f)
	}
}

// position returns the 1-based line and column of n in tree's source.
func position(tree *parse.Tree, n parse.Node) (line, col int) {
	loc, _ := tree.ErrorContext(n)
	_, line, col = splitLocation(loc)
	return line, col + 1
}

// splitLocation splits "name:line:col" (col as ErrorContext gives it, 0-based).
func splitLocation(loc string) (name string, line, col int) {
	i := strings.LastIndexByte(loc, ':')
	if i < 0 {
		return loc, 0, 0
	}
	j := strings.LastIndexByte(loc[:i], ':')
	if j < 0 {
		return loc, 0, 0
	}
	line, _ = strconv.Atoi(loc[j+1 : i])
	col, _ = strconv.Atoi(loc[i+1:])
	return loc[:j], line, col
}

var parseErrorRE = regexp.MustCompile(`(?s)^template: (.*?):(\d+): (.*)$`)

// parseError converts a text/template parse error ("template: name:3: function "x" not
// defined") into an *Error with the line. Go's parser does not report columns.
func parseError(name string, err error) *Error {
	msg := err.Error()
	m := parseErrorRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{Message: strings.TrimPrefix(msg, "template: ")}
	}
	line, _ := strconv.Atoi(m[2])
	return &Error{Line: line, Message: m[3]}
}

var execErrorRE = regexp.MustCompile(`(?s)^template: (.*?):(\d+):(\d+): executing "(.*?)" at <(.*?)>: (.*)$`)

// fieldChainRE matches a context that is a plain field chain from the root: .data.order.id
var fieldChainRE = regexp.MustCompile(`^\$?\.((?:data|contact|message)(?:\.[\pL\pN_]+)*)$`)

// execError converts an execution error into an *Error on field: the limit errors keep their
// sentinel, html/template's context errors and the executor's "template: name:3:7: executing
// … at <.data.x>: …" errors keep their position, and a plain field chain becomes Path.
func (t *Template) execError(field string, set *partSet, lim Limits, err error) *Error {
	e := &Error{Field: field, Message: err.Error()}
	switch {
	case errors.Is(err, ErrOutputLimit):
		e.Err = ErrOutputLimit
		e.Message = fmt.Sprintf("the rendered %s is larger than %s", field, size(lim.MaxOutput))
		return e
	case errors.Is(err, ErrTimeout):
		e.Err = ErrTimeout
		e.Message = fmt.Sprintf("rendering took longer than %v", lim.Timeout)
		return e
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Err = context.Canceled
		if errors.Is(err, context.DeadlineExceeded) {
			e.Err = context.DeadlineExceeded
		}
		e.Message = "rendering stopped: " + e.Err.Error()
		return e
	}
	var he *htmltemplate.Error
	if errors.As(err, &he) {
		// Drop the escaper's internal context dump: "ends in a non-text context: {stateURL …}".
		e.Message, _, _ = strings.Cut(he.Description, ": {state")
		if he.Node != nil {
			if loc, ok := errorContext(he.Node); ok {
				e.Template, e.Line, e.Column = splitLocation(loc)
				e.Column++
			}
		} else {
			e.Template, e.Line = displayName(he.Name, set), he.Line
		}
		return e
	}
	if m := execErrorRE.FindStringSubmatch(e.Message); m != nil {
		e.Template = m[1]
		e.Line, _ = strconv.Atoi(m[2])
		e.Column, _ = strconv.Atoi(m[3])
		e.Column++
		e.Message = m[6]
		if c := fieldChainRE.FindStringSubmatch(m[5]); c != nil {
			e.Path = "/" + strings.ReplaceAll(c[1], ".", "/")
		}
		if e.Template == "hidden" { // a hidden call failed: the limit errors above, or a bug
			e.Template, e.Line, e.Column = "", 0, 0
		}
	}
	e.Message = strings.TrimPrefix(e.Message, "template: ")
	return e
}

// errorContext is parse.Tree.ErrorContext for a node of unknown origin; it reports false
// instead of panicking on a node without a tree.
func errorContext(n parse.Node) (loc string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	loc, _ = (*parse.Tree)(nil).ErrorContext(n)
	return loc, true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
