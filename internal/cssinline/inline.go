package cssinline

import (
	"bytes"
	"io"
	"slices"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Inline inlines the CSS of an HTML document's <style> blocks into style attributes.
func Inline(src string) string {
	out, _ := InlineWith([]byte(src), nil, func() error { return nil }) // fails only when check does
	return out
}

// InlineWith inlines the CSS of an HTML document's <style> blocks, taking the stylesheet of
// a block from known when its content is there (parsing it otherwise). check is called as
// the work goes on; inlining stops with its error as soon as it returns one.
func InlineWith(src []byte, known map[string]*Stylesheet, check func() error) (string, error) {
	d := ScanDocument(src, nil)
	if len(d.Styles) == 0 {
		return string(src), nil
	}
	sheets := make([]*Stylesheet, len(d.Styles))
	for i, st := range d.Styles {
		if !st.Inline {
			continue
		}
		content := src[st.ContentStart:st.ContentEnd]
		if s, ok := known[string(content)]; ok {
			sheets[i] = s
		} else {
			sheets[i] = ParseStylesheet(string(content))
		}
		if err := check(); err != nil {
			return "", err
		}
	}
	edits, err := d.Edits(sheets, check)
	if err != nil {
		return "", err
	}
	return string(ApplyEdits(src, edits)), nil
}

// Document is an HTML text read for inlining.
type Document struct {
	src      []byte
	root     *html.Node
	Elements []*Element    // every start tag, in document order
	Styles   []*StyleBlock // every <style> element, in document order
}

// Element is one start tag and the node built for it.
type Element struct {
	Node     *html.Node
	Start    int    // offset of '<'
	End      int    // offset after '>'
	Attrs    []Attr // as written
	insertAt int    // where a new style attribute goes: after the last attribute
	style    *Attr  // the existing style attribute, if any
}

// Attr is an attribute as written in a start tag, with offsets into the document.
type Attr struct {
	Name             string // lower case
	ValStart, ValEnd int    // the value, without quotes; ValStart == ValEnd == End for no value
	Quote            byte   // '"', '\'' or 0
	End              int    // end of the attribute (after a closing quote)
}

// StyleBlock is a <style> element.
type StyleBlock struct {
	Start, End               int // the whole element, from "<style" to after "</style>"
	ContentStart, ContentEnd int
	Inline                   bool // its media allows inlining (none, "all" or "screen")
	parent                   *html.Node
}

// voidElements never have content (HTML §13.1.2).
var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true,
	"embed": true, "hr": true, "img": true, "input": true, "link": true, "meta": true,
	"param": true, "source": true, "track": true, "wbr": true}

// closesP are the start tags that close an open <p>.
var closesP = map[string]bool{"address": true, "article": true, "aside": true,
	"blockquote": true, "center": true, "details": true, "div": true, "dl": true,
	"fieldset": true, "figure": true, "footer": true, "form": true, "h1": true, "h2": true,
	"h3": true, "h4": true, "h5": true, "h6": true, "header": true, "hr": true, "main": true,
	"nav": true, "ol": true, "p": true, "pre": true, "section": true, "table": true, "ul": true}

// maxDepth bounds the nesting of the tree: deeper start tags are read as siblings, which keeps
// selector matching (linear in the depth for each element) fast on hostile documents. Real
// emails nest a few dozen elements deep.
const maxDepth = 256

// ScanDocument reads src into a tree. onToken, when not nil, is called for every token with
// its span and the innermost open element before the token is applied (a caller inlining into
// a template's source uses it to place the template's actions).
func ScanDocument(src []byte, onToken func(tt html.TokenType, start, end int, raw []byte, open *html.Node)) *Document {
	d := &Document{src: src, root: &html.Node{Type: html.DocumentNode}}
	z := html.NewTokenizer(bytes.NewReader(src))
	cur := d.root
	depth := 0 // of cur
	pos := 0
	var style *StyleBlock
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() == io.EOF && style != nil { // unterminated <style>: leave it alone
				d.Styles = d.Styles[:len(d.Styles)-1]
			}
			return d
		}
		raw := z.Raw()
		start := pos
		pos += len(raw)
		if onToken != nil {
			onToken(tt, start, pos, raw, cur)
		}
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			for open := closeImplied(cur, tag); cur != open; cur = cur.Parent {
				depth--
			}
			e := &Element{Start: start, End: pos}
			e.Attrs, e.insertAt = scanAttrs(raw, start)
			n := &html.Node{Type: html.ElementNode, Data: tag, DataAtom: atom.Lookup(name)}
			for i := range e.Attrs {
				a := &e.Attrs[i]
				if hasAttr(n, a.Name) { // the tokenizer keeps the first of duplicate attributes
					continue
				}
				val := string(src[a.ValStart:a.ValEnd])
				if strings.IndexByte(val, '&') >= 0 {
					val = html.UnescapeString(val)
				}
				n.Attr = append(n.Attr, html.Attribute{Key: a.Name, Val: val})
				if a.Name == "style" {
					e.style = a
				}
			}
			e.Node = n
			cur.AppendChild(n)
			d.Elements = append(d.Elements, e)
			if !voidElements[tag] && depth < maxDepth {
				cur = n
				depth++
			}
			if tag == "style" {
				style = &StyleBlock{Start: start, ContentStart: pos, parent: n.Parent}
				media := strings.ToLower(strings.TrimSpace(attrValue(n, "media")))
				style.Inline = media == "" || media == "all" || media == "screen"
				d.Styles = append(d.Styles, style)
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if tag == "style" && style != nil {
				style.ContentEnd, style.End = start, pos
				style = nil
			}
			for n, up := cur, 1; n != d.root; n, up = n.Parent, up+1 {
				if n.Data == tag {
					cur = n.Parent
					depth -= up
					break
				}
			}
		case html.TextToken:
			// Text matters only to :empty, which ignores white space.
			if style == nil && len(bytes.TrimSpace(raw)) > 0 {
				cur.AppendChild(&html.Node{Type: html.TextNode, Data: string(raw)})
			}
		}
	}
}

// closeImplied closes the elements a start tag closes implicitly, returning the new current
// element.
func closeImplied(cur *html.Node, tag string) *html.Node {
	closes := func(open string) bool {
		switch {
		case open == "p":
			return closesP[tag]
		case open == "li":
			return tag == "li"
		case open == "dt" || open == "dd":
			return tag == "dt" || tag == "dd"
		case open == "option":
			return tag == "option" || tag == "optgroup"
		case open == "td" || open == "th":
			return tag == "td" || tag == "th" || tag == "tr" || tag == "tbody" || tag == "thead" || tag == "tfoot"
		case open == "tr":
			return tag == "tr" || tag == "tbody" || tag == "thead" || tag == "tfoot"
		case open == "thead" || open == "tbody" || open == "tfoot":
			return tag == "tbody" || tag == "thead" || tag == "tfoot"
		}
		return false
	}
	for cur.Type == html.ElementNode && closes(cur.Data) {
		cur = cur.Parent
	}
	return cur
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func attrValue(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// scanAttrs reads the attributes of a raw start tag as the HTML tokenizer does (HTML
// §13.2.5.32–38), with their offsets (base is the tag's offset in the document). insertAt is
// just after the last attribute, or after the tag name.
func scanAttrs(raw []byte, base int) (attrs []Attr, insertAt int) {
	i := 1
	for i < len(raw) && !isHTMLSpace(raw[i]) && raw[i] != '/' && raw[i] != '>' {
		i++
	}
	insertAt = base + i
	for {
		for i < len(raw) && (isHTMLSpace(raw[i]) || raw[i] == '/') {
			i++
		}
		if i >= len(raw) || raw[i] == '>' {
			return attrs, insertAt
		}
		ns := i
		i++ // a name may start with '='
		for i < len(raw) && !isHTMLSpace(raw[i]) && raw[i] != '/' && raw[i] != '>' && raw[i] != '=' {
			i++
		}
		a := Attr{Name: strings.ToLower(string(raw[ns:i]))}
		j := i
		for j < len(raw) && isHTMLSpace(raw[j]) {
			j++
		}
		if j < len(raw) && raw[j] == '=' {
			j++
			for j < len(raw) && isHTMLSpace(raw[j]) {
				j++
			}
			if j < len(raw) && (raw[j] == '"' || raw[j] == '\'') {
				a.Quote = raw[j]
				k := bytes.IndexByte(raw[j+1:], a.Quote)
				if k < 0 {
					k = len(raw) - j - 2 // unterminated: up to the final '>'
				}
				a.ValStart, a.ValEnd = base+j+1, base+j+1+k
				i = j + 1 + k + 1
			} else {
				k := j
				for k < len(raw) && !isHTMLSpace(raw[k]) && raw[k] != '>' {
					k++
				}
				a.ValStart, a.ValEnd = base+j, base+k
				i = k
			}
		} else {
			a.ValStart, a.ValEnd = base+i, base+i
		}
		if i > len(raw) {
			i = len(raw)
		}
		a.End = base + i
		insertAt = a.End
		attrs = append(attrs, a)
	}
}

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// Edit replaces src[Start:End] with Text.
type Edit struct {
	Start, End int
	Text       string
}

// ApplyEdits returns src with edits applied; the edits must not overlap. It may sort edits,
// and returns src itself when there are none.
func ApplyEdits(src []byte, edits []Edit) []byte {
	if len(edits) == 0 {
		return src
	}
	slices.SortStableFunc(edits, func(a, b Edit) int { return a.Start - b.Start })
	n := len(src)
	for _, e := range edits {
		n += len(e.Text) - (e.End - e.Start)
	}
	out := make([]byte, 0, n)
	at := 0
	for _, e := range edits {
		out = append(out, src[at:e.Start]...)
		out = append(out, e.Text...)
		at = e.End
	}
	return append(out, src[at:]...)
}

// ruleIndex finds the rules that may match an element by the key of their rightmost compound.
type ruleIndex struct {
	byID, byClass, byTag map[string][]ordered
	any                  []ordered
}

// ordered is a rule with its position among all the document's rules (style blocks in
// document order, rules in source order), which decides between equal specificities.
type ordered struct {
	*cssRule
	order int
}

func newRuleIndex(sheets []*Stylesheet) *ruleIndex {
	ix := &ruleIndex{byID: map[string][]ordered{}, byClass: map[string][]ordered{}, byTag: map[string][]ordered{}}
	order := 0
	for _, s := range sheets {
		if s == nil {
			continue
		}
		for _, rule := range s.rules {
			r := ordered{rule, order}
			order++
			switch r.keyKind {
			case '#':
				ix.byID[r.key] = append(ix.byID[r.key], r)
			case '.':
				ix.byClass[r.key] = append(ix.byClass[r.key], r)
			case 't':
				ix.byTag[r.key] = append(ix.byTag[r.key], r)
			default:
				ix.any = append(ix.any, r)
			}
		}
	}
	return ix
}

// matching returns the rules that match n, sorted by specificity then source order.
func (ix *ruleIndex) matching(n *html.Node, buf []ordered, memo map[memoKey]bool) []ordered {
	out := buf[:0]
	try := func(rs []ordered) {
		for _, r := range rs {
			if !slices.Contains(out, r) && r.match(n, memo) {
				out = append(out, r)
			}
		}
	}
	try(ix.byTag[n.Data])
	try(ix.any)
	for _, a := range n.Attr {
		switch a.Key {
		case "id":
			try(ix.byID[a.Val])
		case "class":
			for _, c := range strings.Fields(a.Val) {
				try(ix.byClass[c])
			}
		}
	}
	slices.SortFunc(out, func(a, b ordered) int {
		if a.spec != b.spec {
			if a.spec.Less(b.spec) {
				return -1
			}
			return 1
		}
		return a.order - b.order
	})
	return out
}

// Edits computes the edits that inline sheets (one per style block of d.Styles, nil for blocks
// that are left alone) into d: new or merged style attributes, and the style blocks reduced to
// their kept CSS. check is called for every element; Edits stops with its error.
func (d *Document) Edits(sheets []*Stylesheet, check func() error) ([]Edit, error) {
	ix := newRuleIndex(sheets)
	var edits []Edit
	var buf []ordered
	memo := map[memoKey]bool{}
	for _, e := range d.Elements {
		if err := check(); err != nil {
			return nil, err
		}
		if e.Node.Data == "style" || e.Node.Data == "head" || e.Node.Data == "title" || e.Node.Data == "meta" || e.Node.Data == "link" {
			continue
		}
		buf = ix.matching(e.Node, buf, memo)
		if len(buf) == 0 {
			continue
		}
		var own []declaration
		if e.style != nil {
			own = parseDeclarations(attrValue(e.Node, "style"))
		}
		style := cascade(buf, own)
		if e.style == nil && style == "" {
			continue // the matching rules declare nothing valid
		}
		if e.style == nil {
			edits = append(edits, Edit{e.insertAt, e.insertAt, ` style="` + escapeAttr(style, '"') + `"`})
		} else if e.style.Quote == 0 {
			edits = append(edits, Edit{e.style.ValStart, e.style.ValEnd, `"` + escapeAttr(style, '"') + `"`})
		} else {
			edits = append(edits, Edit{e.style.ValStart, e.style.ValEnd, escapeAttr(style, e.style.Quote)})
		}
	}
	for i, st := range d.Styles {
		s := sheets[i]
		if s == nil || len(s.rules) == 0 {
			continue // nothing was inlined from it: leave it as written
		}
		if s.kept == "" {
			edits = append(edits, Edit{st.Start, st.End, ""})
		} else {
			edits = append(edits, Edit{st.ContentStart, st.ContentEnd, "\n" + s.kept + "\n"})
		}
	}
	return edits, nil
}

// cascade merges the declarations of the matching rules (sorted by specificity and order)
// with the element's own, and writes the result as a style attribute value.
func cascade(rules []ordered, own []declaration) string {
	type entry struct {
		d    declaration
		tier int // 0 stylesheet, 1 own, 2 stylesheet !important, 3 own !important
	}
	var entries []entry
	for tier := 0; tier < 4; tier++ {
		important := tier >= 2
		if tier == 0 || tier == 2 {
			for _, r := range rules {
				for _, d := range r.decls {
					if d.important == important {
						entries = append(entries, entry{d, tier})
					}
				}
			}
		} else {
			for _, d := range own {
				if d.important == important {
					entries = append(entries, entry{d, tier})
				}
			}
		}
	}
	// Later entries win; each property is written once, where its winner stands.
	var out []declaration
	for _, e := range entries {
		out = slices.DeleteFunc(out, func(d declaration) bool { return d.prop == e.d.prop })
		out = append(out, e.d)
	}
	var b strings.Builder
	for i, d := range out {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(d.prop)
		b.WriteByte(':')
		b.WriteString(d.value)
		if d.important {
			b.WriteString("!important")
		}
	}
	return b.String()
}

// escapeAttr escapes an attribute value for the given quote.
func escapeAttr(s string, quote byte) string {
	if strings.IndexByte(s, '&') < 0 && strings.IndexByte(s, quote) < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "&", "&amp;")
	if quote == '\'' {
		return strings.ReplaceAll(s, "'", "&#39;")
	}
	return strings.ReplaceAll(s, `"`, "&quot;")
}
