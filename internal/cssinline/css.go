package cssinline

import (
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/cascadia"
	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/css"
	"golang.org/x/net/html"
)

// Stylesheet is the content of one <style> block, split into the rules that can be inlined
// and the CSS that must stay in the block.
type Stylesheet struct {
	rules []*cssRule
	// kept is what stays in the <style> block: at-rules (@media, @font-face, @import …) as
	// written, and rules whose selectors cannot be inlined (:hover, ::before, selectors
	// cascadia does not know), in source order.
	kept string
	// notes says which selectors were kept and why, once each.
	notes []string
}

// Notes says which selectors are kept in the block and why, once each.
func (s *Stylesheet) Notes() []string { return s.notes }

// Attrs returns the attribute names that the inlined selectors test ([href^=…]), lower case,
// with repeats.
func (s *Stylesheet) Attrs() []string {
	var names []string
	for _, r := range s.rules {
		names = append(names, r.attrs...)
	}
	return names
}

// Structural returns the first inlined selector whose matching depends on siblings, position
// or content (:first-child, +, ~, :empty), or "" when there is none.
func (s *Stylesheet) Structural() string {
	for _, r := range s.rules {
		if r.structural {
			return r.text
		}
	}
	return ""
}

// cssRule is one selector of a rule with the rule's declarations ("a, .b {…}" gives two).
//
// The selector is kept as its compound selectors and the combinators between them:
// cascadia matches each compound, and match walks the combinators with memoization.
// cascadia's own matching of "x b b b b" backtracks through every ancestor at every step,
// which takes time exponential in the number of combinators on deeply nested documents.
type cssRule struct {
	parts []cascadia.Sel // compound selectors, left to right
	combs []byte         // combs[i] joins parts[i] and parts[i+1]: ' ', '>', '+' or '~'
	text  string
	spec  cascadia.Specificity
	decls []declaration
	// key indexes the rule by its rightmost compound: an id, else a class, else a tag name;
	// keyKind is '#', '.', 't' or 0 (any element).
	keyKind byte
	key     string
	// structural is true when matching depends on siblings, position or content (pseudo-
	// classes, + and ~ combinators): such rules cannot be applied to a template source whose
	// loops and branches change the structure.
	structural bool
	// attrs are the attribute names the selector tests ([href^=…]), lower case.
	attrs []string
}

type declaration struct {
	prop, value string
	important   bool
}

// staticPseudo are the pseudo-classes that describe the document, not the user's interaction
// with it, so their rules can be inlined. Every other pseudo-class and every pseudo-element
// keeps its rule in the <style> block.
var staticPseudo = map[string]bool{
	"first-child": true, "last-child": true, "only-child": true, "nth-child": true,
	"nth-last-child": true, "first-of-type": true, "last-of-type": true, "only-of-type": true,
	"nth-of-type": true, "nth-last-of-type": true, "empty": true, "root": true, "not": true,
	"lang": true,
}

// ParseStylesheet splits CSS into top-level statements with tdewolff's lexer (so strings,
// comments and escapes are handled as CSS does) and sorts each rule into inlinable rules and
// kept CSS.
func ParseStylesheet(src string) *Stylesheet {
	sheet := &Stylesheet{}
	var kept []string
	noted := map[string]bool{}
	l := css.NewLexer(parse.NewInputString(src))
	offset, start := 0, -1 // start of the current statement
	depth, blockStart := 0, -1
	isAt := false
	for {
		tt, data := l.Next()
		if tt == css.ErrorToken {
			if l.Err() != io.EOF || start >= 0 {
				// Unterminated or broken: keep what is left as written.
				if start >= 0 {
					kept = append(kept, strings.TrimSpace(src[start:]))
				}
			}
			break
		}
		pos := offset
		offset += len(data)
		if start < 0 {
			switch tt {
			case css.WhitespaceToken, css.CommentToken, css.CDOToken, css.CDCToken:
				continue
			}
			start, isAt, depth, blockStart = pos, tt == css.AtKeywordToken, 0, -1
		}
		switch tt {
		case css.LeftBraceToken:
			if depth == 0 {
				blockStart = offset
			}
			depth++
			continue
		case css.LeftParenthesisToken, css.LeftBracketToken, css.FunctionToken:
			depth++
			continue
		case css.RightParenthesisToken, css.RightBracketToken:
			depth--
			continue
		case css.RightBraceToken:
			depth--
			if depth > 0 {
				continue
			}
		case css.SemicolonToken:
			if depth > 0 || !isAt {
				continue
			}
		default:
			continue
		}
		// A statement ends here: "@… ;", "@… {…}" or "selectors {…}".
		stmt := src[start:offset]
		if isAt || blockStart < 0 {
			kept = append(kept, strings.TrimSpace(stmt))
		} else {
			prelude := strings.TrimSpace(src[start : blockStart-1])
			body := src[blockStart:pos]
			if strings.ContainsRune(body, '{') { // nested CSS: keep as written
				kept = append(kept, strings.TrimSpace(stmt))
			} else {
				var keptSels []string
				decls := parseDeclarations(body)
				for _, s := range splitSelectors(prelude) {
					r, why := newRule(s, decls)
					if r == nil {
						keptSels = append(keptSels, s)
						if !noted[s] {
							noted[s] = true
							sheet.notes = append(sheet.notes, "css: "+s+" stays in <style>: "+why)
						}
						continue
					}
					sheet.rules = append(sheet.rules, r)
				}
				if len(keptSels) > 0 {
					kept = append(kept, strings.Join(keptSels, ", ")+" {"+body+"}")
				}
			}
		}
		start = -1
	}
	sheet.kept = strings.Join(kept, "\n")
	return sheet
}

// newRule compiles one selector, or says why it stays in the <style> block.
func newRule(sel string, decls []declaration) (*cssRule, string) {
	info := scanSelector(sel)
	if info.keep != "" {
		return nil, info.keep
	}
	r := &cssRule{text: sel, decls: decls, combs: info.combs,
		keyKind: info.keyKind, key: info.key, structural: info.structural, attrs: info.attrs}
	for _, c := range info.compounds {
		s, err := cascadia.Parse(c)
		if err != nil {
			return nil, "cascadia cannot match it (" + err.Error() + ")"
		}
		r.parts = append(r.parts, s)
		r.spec = r.spec.Add(s.Specificity())
	}
	return r, ""
}

// maxCompounds bounds the compound selectors of an inlined selector ("a b > c" has three);
// longer selectors stay in the <style> block.
const maxCompounds = 16

// match reports whether the rule's selector matches n. memo caches, per document, whether
// parts[:i+1] matches a node, which keeps matching linear in the depth of the document.
func (r *cssRule) match(n *html.Node, memo map[memoKey]bool) bool {
	return r.matchAt(len(r.parts)-1, n, memo)
}

type memoKey struct {
	r *cssRule
	i int
	n *html.Node
}

func (r *cssRule) matchAt(i int, n *html.Node, memo map[memoKey]bool) bool {
	if !r.parts[i].Match(n) {
		return false
	}
	if i == 0 {
		return true
	}
	k := memoKey{r, i, n}
	if v, ok := memo[k]; ok {
		return v
	}
	// '>' and ' ' look at the parent or any ancestor, '+' and '~' at the previous sibling or
	// any previous sibling.
	c := r.combs[i-1]
	next, any := parentElement, c == ' '
	if c == '+' || c == '~' {
		next, any = prevElement, c == '~'
	}
	ok := false
	for m := next(n); m != nil && !ok; m = next(m) {
		ok = r.matchAt(i-1, m, memo)
		if !any {
			break
		}
	}
	memo[k] = ok
	return ok
}

func parentElement(n *html.Node) *html.Node {
	if p := n.Parent; p != nil && p.Type == html.ElementNode {
		return p
	}
	return nil
}

func prevElement(n *html.Node) *html.Node {
	for s := n.PrevSibling; s != nil; s = s.PrevSibling {
		if s.Type == html.ElementNode {
			return s
		}
	}
	return nil
}

type selectorInfo struct {
	keep       string // why the selector cannot be inlined; "" when it can
	structural bool
	attrs      []string
	compounds  []string // the compound selectors, left to right
	combs      []byte   // the combinators between them
	keyKind    byte
	key        string
}

// scanSelector reads what the inliner needs to know about a selector: its compound selectors
// and combinators, its pseudo-classes and pseudo-elements, the attributes it tests and the
// rightmost compound's id, class or tag.
func scanSelector(sel string) selectorInfo {
	var info selectorInfo
	depth, start := 0, 0
	var comb byte // the combinator before the compound being read, once one is seen
	endCompound := func(i int) {
		if c := strings.TrimSpace(sel[start:i]); c != "" {
			if len(info.compounds) > 0 {
				info.combs = append(info.combs, comb)
			}
			info.compounds = append(info.compounds, c)
			comb = 0
		}
	}
	for i := 0; i < len(sel); i++ {
		c := sel[i]
		switch {
		case c == '\\':
			i++
		case c == '"' || c == '\'':
			if j := strings.IndexByte(sel[i+1:], c); j >= 0 {
				i += j + 1
			}
		case c == '(' || c == '[':
			if c == '[' {
				name := sel[i+1:]
				if j := strings.IndexAny(name, "]=~|^$*"); j >= 0 {
					name = name[:j]
				}
				info.attrs = append(info.attrs, strings.ToLower(strings.TrimSpace(name)))
			} else if end := matchingParen(sel, i); end > i && strings.HasSuffix(strings.ToLower(sel[:i]), ":not") &&
				strings.ContainsAny(strings.TrimSpace(sel[i+1:end]), " \t\n>+~") {
				info.keep = ":not() with a combinator inside cannot be inlined"
			}
			depth++
		case c == ')' || c == ']':
			depth--
		case c == ':':
			j := i + 1
			element := j < len(sel) && sel[j] == ':'
			if element {
				j++
			}
			k := j
			for k < len(sel) && isIdentByte(sel[k]) {
				k++
			}
			name := strings.ToLower(sel[j:k])
			switch {
			case element || name == "before" || name == "after" || name == "first-line" || name == "first-letter":
				info.keep = "pseudo-elements cannot be inlined"
			case !staticPseudo[name]:
				info.keep = ":" + name + " depends on the reader, it cannot be inlined"
			default:
				info.structural = true
			}
			i = k - 1
		case depth > 0:
		case c == '>' || c == '+' || c == '~':
			endCompound(i)
			if len(info.compounds) == 0 {
				info.keep = "a combinator has nothing on one side"
			}
			comb, start = c, i+1
			if c != '>' {
				info.structural = true
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			endCompound(i)
			if comb == 0 {
				comb = ' '
			}
			start = i + 1
		}
	}
	endCompound(len(sel))
	switch {
	case info.keep != "":
	case len(info.compounds) == 0:
		info.keep = "it is empty"
	case len(info.compounds) > maxCompounds:
		info.keep = fmt.Sprintf("more than %d compound selectors", maxCompounds)
	case len(info.combs) != len(info.compounds)-1 || (comb != 0 && comb != ' '):
		info.keep = "a combinator has nothing on one side"
	default:
		info.keyKind, info.key = compoundKey(info.compounds[len(info.compounds)-1])
	}
	return info
}

// matchingParen returns the index of the ')' closing the '(' at i, or -1.
func matchingParen(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// compoundKey returns the id, else the first class, else the tag name of a compound selector
// ("td.cell#x" → '#', "x"), ignoring what is inside parentheses and brackets. Escapes make it
// give up (0: the rule is tried on every element).
func compoundKey(c string) (byte, string) {
	if strings.IndexByte(c, '\\') >= 0 {
		return 0, ""
	}
	var tag, class, id string
	depth := 0
	for i := 0; i < len(c); i++ {
		switch ch := c[i]; {
		case ch == '(' || ch == '[':
			depth++
		case ch == ')' || ch == ']':
			depth--
		case depth > 0:
		case ch == '#' || ch == '.':
			j := i + 1
			for j < len(c) && isIdentByte(c[j]) {
				j++
			}
			if ch == '#' && id == "" {
				id = c[i+1 : j]
			} else if ch == '.' && class == "" {
				class = c[i+1 : j]
			}
			i = j - 1
		case i == 0 && isIdentByte(ch):
			j := i + 1
			for j < len(c) && isIdentByte(c[j]) {
				j++
			}
			tag = strings.ToLower(c[:j])
			i = j - 1
		}
	}
	switch {
	case id != "":
		return '#', id
	case class != "":
		return '.', class
	case tag != "":
		return 't', tag
	}
	return 0, ""
}

func isIdentByte(c byte) bool {
	return c == '-' || c == '_' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// splitSelectors splits a selector list at its top-level commas.
func splitSelectors(list string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(list); i++ {
		switch c := list[i]; c {
		case '\\':
			i++
		case '"', '\'':
			if j := strings.IndexByte(list[i+1:], c); j >= 0 {
				i += j + 1
			}
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		case ',':
			if depth == 0 {
				if s := strings.TrimSpace(list[start:i]); s != "" {
					out = append(out, s)
				}
				start = i + 1
			}
		}
	}
	if s := strings.TrimSpace(list[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// parseDeclarations parses a declaration block ("color: red; font: 12px/1.5 a, b") with
// tdewolff's parser, dropping invalid declarations as browsers do.
func parseDeclarations(block string) []declaration {
	var out []declaration
	p := css.NewParser(parse.NewInputString(block), true)
	for {
		gt, _, data := p.Next()
		switch gt {
		case css.ErrorGrammar:
			if p.Err() == io.EOF {
				return out
			}
		case css.DeclarationGrammar, css.CustomPropertyGrammar:
			d := declaration{prop: string(data)}
			vals := p.Values()
			if gt == css.DeclarationGrammar {
				if n := len(vals); n >= 2 && vals[n-2].TokenType == css.DelimToken && string(vals[n-2].Data) == "!" &&
					strings.EqualFold(string(vals[n-1].Data), "important") {
					d.important = true
					vals = vals[:n-2]
				}
			}
			var b strings.Builder
			for _, v := range vals {
				b.Write(v.Data)
			}
			d.value = strings.TrimSpace(b.String())
			if d.value != "" {
				out = append(out, d)
			}
		}
	}
}
