package render

import (
	"bytes"
	"context"
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strings"
	"text/template/parse"
	"time"

	"golang.org/x/net/html"

	"github.com/postie/postie/internal/cssinline"
)

// Inlining CSS into a template's source
//
// When the result is the same for every message, Compile inlines the CSS into the html
// template itself, and rendering does no CSS or HTML parsing at all. The template is laid out
// as one document: the text of its parse trees in execution order, following
// {{template "content" .}} and other calls into the called template, with every action and
// every {{if}}/{{range}}/{{with}}/{{else}}/{{end}} standing as an opaque placeholder byte.
// The inliner reads that document like rendered HTML, and its edits (style attributes,
// reduced <style> blocks) are written back into the parse trees' text nodes.
//
// That is exact only when what the actions can produce does not change which rules match
// which elements. Compile inlines into the source only when all of these hold, and otherwise
// inlines per render (parsing only the <style> blocks that differ from the source's):
//
//   - no <style> block contains an action or sits inside {{if}}/{{range}}/{{with}};
//   - actions inside tags stand only in quoted values of attributes that no selector tests
//     and that are not class, id or style (href="{{.data.url}}" is fine; class="{{…}}" is
//     not), and never in a tag name, an end tag or where an attribute name goes;
//   - every branch of an {{if}}, {{range}} or {{with}} closes the elements it opens, so that
//     each element has the same ancestors whatever the data;
//   - when there are actions at all, no inlined selector depends on siblings, position or
//     content (:first-child, :nth-child, :empty, +, ~): a {{range}} repeats elements and an
//     {{if}} removes them;
//   - no template is called twice, and there is no {{break}} or {{continue}};
//   - html/template can emit no markup from data (this package has no function that returns
//     template.HTML), so every element is in the source.

// cssPlan is how a template's CSS is inlined when rendering: nil when Compile inlined it all
// into the source (or there is none). sheets caches the <style> blocks seen at Compile by
// content, so a block that is static is parsed once even when the document around it is not.
type cssPlan struct {
	sheets map[string]*cssinline.Stylesheet
}

// inline inlines the CSS of an HTML document's <style> blocks, checking the budget as it goes.
func (p *cssPlan) inline(src []byte, b *budget) (string, error) {
	return cssinline.InlineWith(src, p.sheets, b.check)
}

// placeholder stands for an action or a control marker in the laid-out document. Text nodes
// containing it make Compile inline per render.
const placeholder = 0

// segment is a piece of the laid-out document: a text node, or a placeholder.
type segment struct {
	text       *parse.TextNode // nil for a placeholder
	start, end int
	kind       byte // 't' text, 'a' action, 'o' if/range/with, 'm' else, 'c' end
	ctl        int  // the control structure a marker belongs to
}

type layout struct {
	set    *partSet
	buf    []byte
	segs   []segment
	seen   map[*parse.TextNode]bool
	called map[string]bool
	nctl   int
	fail   string
}

func (l *layout) failf(format string, args ...any) {
	if l.fail == "" {
		l.fail = fmt.Sprintf(format, args...)
	}
}

func (l *layout) add(kind byte, text *parse.TextNode, ctl int) {
	s := segment{text: text, start: len(l.buf), kind: kind, ctl: ctl}
	if text != nil {
		l.buf = append(l.buf, text.Text...)
	} else {
		l.buf = append(l.buf, placeholder)
	}
	s.end = len(l.buf)
	l.segs = append(l.segs, s)
}

func (l *layout) list(n *parse.ListNode) {
	if n == nil {
		return
	}
	for _, c := range n.Nodes {
		l.node(c)
	}
}

func (l *layout) node(n parse.Node) {
	switch n := n.(type) {
	case *parse.TextNode:
		if l.seen[n] {
			l.failf("a template is used twice")
		}
		l.seen[n] = true
		if bytes.IndexByte(n.Text, placeholder) >= 0 {
			l.failf("the html contains a NUL byte")
		}
		l.add('t', n, 0)
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 { // declarations print nothing
			l.add('a', nil, 0)
		}
	case *parse.IfNode:
		l.branch(&n.BranchNode)
	case *parse.RangeNode:
		l.branch(&n.BranchNode)
	case *parse.WithNode:
		l.branch(&n.BranchNode)
	case *parse.TemplateNode:
		if l.called[n.Name] {
			l.failf("template %q is called twice", displayName(n.Name, l.set))
			return
		}
		l.called[n.Name] = true
		l.list(l.set.trees[n.Name].Root)
	case *parse.BreakNode, *parse.ContinueNode:
		l.failf("{{break}} and {{continue}} cut elements short")
	}
}

func (l *layout) branch(b *parse.BranchNode) {
	l.nctl++
	id := l.nctl
	l.add('o', nil, id)
	l.list(b.List)
	if b.ElseList != nil {
		l.add('m', nil, id)
		l.list(b.ElseList)
	}
	l.add('c', nil, id)
}

// planCSS inlines the html part's CSS into its parse trees when that is exact (see above),
// and otherwise returns the plan for inlining per render. It returns nil when there is
// nothing to inline when rendering, and notes for Template.Notes.
func planCSS(set *partSet) (*cssPlan, []string) {
	l := &layout{set: set, seen: map[*parse.TextNode]bool{}, called: map[string]bool{}}
	l.called[set.root] = true
	l.list(set.trees[set.root].Root)
	if l.fail != "" {
		return perRenderPlan(set, nil, l.fail)
	}
	var marks []segment
	for _, s := range l.segs {
		if s.text == nil {
			marks = append(marks, s)
		}
	}
	// Read the document, noting for each placeholder the innermost open element and
	// whether it is somewhere an action cannot be.
	tops := make(map[int]*html.Node, len(marks)) // by offset
	mi := 0
	d := cssinline.ScanDocument(l.buf, func(tt html.TokenType, start, end int, raw []byte, open *html.Node) {
		// html/template writes a "<" in text that starts neither a tag nor a comment as
		// "&lt;", so what the tokenizer reads as a bogus comment (<!x>, <?x>, </ x>) is text
		// by the time the message is rendered, and may hold elements.
		if tt == html.CommentToken && !bytes.HasPrefix(raw, []byte("<!--")) {
			l.failf("the html has a bogus comment (%.20q), which html/template turns into text", raw)
		}
		for ; mi < len(marks) && marks[mi].start < end; mi++ {
			p := marks[mi].start
			tops[p] = open
			switch tt {
			case html.EndTagToken:
				l.failf("an action stands in an end tag")
			case html.TextToken:
				if p > 0 && l.buf[p-1] == '<' || p > 1 && l.buf[p-2] == '<' && l.buf[p-1] == '/' {
					l.failf("an action stands where a tag name would be")
				}
			}
		}
	})
	if len(d.Styles) == 0 {
		return nil, nil
	}
	sheets := make([]*cssinline.Stylesheet, len(d.Styles))
	var notes []string
	for i, st := range d.Styles {
		if st.Inline {
			sheets[i] = cssinline.ParseStylesheet(string(l.buf[st.ContentStart:st.ContentEnd]))
			notes = append(notes, sheets[i].Notes()...)
		}
	}
	if l.fail == "" {
		l.check(d, sheets, marks, tops)
	}
	if l.fail != "" {
		return perRenderPlan(set, notes, l.fail)
	}
	b := &budget{}
	b.reset(context.Background(), time.Now().Add(DefaultTimeout))
	edits, err := d.Edits(sheets, b.check)
	if err != nil {
		return perRenderPlan(set, notes, "inlining took longer than "+DefaultTimeout.String())
	}
	if err := l.apply(edits); err != nil {
		return perRenderPlan(set, notes, err.Error())
	}
	return nil, notes
}

// check applies the conditions for inlining into the source, recording the first one that
// fails in l.fail.
func (l *layout) check(d *cssinline.Document, sheets []*cssinline.Stylesheet, marks []segment, tops map[int]*html.Node) {
	tested := map[string]bool{"class": true, "id": true, "style": true}
	structural := ""
	for _, s := range sheets {
		if s == nil {
			continue
		}
		for _, a := range s.Attrs() {
			tested[a] = true
		}
		if structural == "" {
			structural = s.Structural()
		}
	}
	if structural != "" && len(marks) > 0 {
		l.failf("the selector %s depends on the position or content of elements, which actions change", structural)
		return
	}
	inside := func(p, start, end int) bool { return start <= p && p < end }
	for _, m := range marks {
		for _, st := range d.Styles {
			if inside(m.start, st.Start, st.End) {
				l.failf("a <style> block contains an action")
				return
			}
		}
	}
	for _, e := range d.Elements {
		for _, m := range marks {
			if !inside(m.start, e.Start, e.End) {
				continue
			}
			ok := false
			for _, a := range e.Attrs {
				if a.Quote != 0 && inside(m.start, a.ValStart, a.ValEnd) {
					if tested[a.Name] {
						l.failf("an action sets the %s attribute of <%s>, which selectors test", a.Name, e.Node.Data)
						return
					}
					ok = true
				}
			}
			if !ok {
				l.failf("an action stands inside <%s> outside a quoted attribute value", e.Node.Data)
				return
			}
		}
	}
	// Control structures: the same open element at if, else and end; and no <style> inside.
	first := map[int]*html.Node{}
	depth := 0
	si := 0
	for _, m := range marks {
		for ; si < len(d.Styles) && d.Styles[si].Start < m.start; si++ {
			if depth > 0 {
				l.failf("a <style> block is inside {{if}}, {{range}} or {{with}}")
				return
			}
		}
		switch m.kind {
		case 'o':
			first[m.ctl] = tops[m.start]
			depth++
		case 'm', 'c':
			if tops[m.start] != first[m.ctl] {
				l.failf("a branch of {{if}}, {{range}} or {{with}} opens or closes elements it does not close or open")
				return
			}
			if m.kind == 'c' {
				depth--
			}
		}
	}
}

// apply writes edits of the laid-out document into the text nodes. An insertion goes into
// the text node holding the byte it precedes; a replacement may span several text nodes (its
// text goes into the first), never a placeholder.
func (l *layout) apply(edits []cssinline.Edit) error {
	byNode := map[*parse.TextNode][]cssinline.Edit{}
	for _, e := range edits {
		placed := false
		for _, s := range l.segs {
			overlaps := s.start < e.End && e.Start < s.end
			if e.Start == e.End {
				overlaps = s.start <= e.Start && e.Start < s.end
			}
			if !overlaps {
				continue
			}
			if s.text == nil {
				return fmt.Errorf("an inlining edit touches an action")
			}
			local := cssinline.Edit{Start: max(e.Start, s.start) - s.start, End: min(e.End, s.end) - s.start}
			if !placed {
				local.Text, placed = e.Text, true
			}
			byNode[s.text] = append(byNode[s.text], local)
		}
		if !placed {
			return fmt.Errorf("an inlining edit falls outside the text")
		}
	}
	for n, es := range byNode {
		n.Text = slices.Clone(cssinline.ApplyEdits(n.Text, es))
	}
	return nil
}

// perRenderPlan is the plan when Compile cannot inline into the source: every <style> block
// of the source that contains no action is parsed now, for renders to reuse.
func perRenderPlan(set *partSet, notes []string, why string) (*cssPlan, []string) {
	p := &cssPlan{sheets: map[string]*cssinline.Stylesheet{}}
	found := false
	for _, name := range set.names {
		walkNodes(set.trees[name].Root, func(n parse.Node) {
			t, ok := n.(*parse.TextNode)
			if !ok || !bytes.Contains(bytes.ToLower(t.Text), []byte("<style")) {
				return
			}
			found = true
			d := cssinline.ScanDocument(t.Text, nil)
			for _, st := range d.Styles {
				// Renders see the block as html/template writes it (CSS comments
				// removed), so that is the key.
				content := escapedCSS(string(t.Text[st.ContentStart:st.ContentEnd]))
				if _, ok := p.sheets[content]; !ok {
					p.sheets[content] = cssinline.ParseStylesheet(content)
				}
			}
		})
	}
	if !found {
		return nil, notes
	}
	if notes == nil {
		for _, s := range p.sheets {
			notes = append(notes, s.Notes()...)
		}
		slices.Sort(notes)
	}
	return p, append(notes, "css: inlined when rendering, not once at upload: "+why)
}

// escapedCSS returns the static content of a <style> block as html/template writes it: it
// removes CSS comments (and what it takes for "//" line comments).
func escapedCSS(content string) string {
	var b strings.Builder
	t, err := htmltemplate.New("css").Parse("<style>" + content + "</style>")
	if err != nil || t.Execute(&b, nil) != nil {
		return content
	}
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), "<style>"), "</style>")
}
