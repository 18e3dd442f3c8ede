// Package htmltext turns an HTML document into the plain text of an email's text/plain part.
// It does no I/O, keeps no state and never fails; everything here is safe for concurrent use.
// The template engine (internal/render) uses it for templates without a text part, and the
// message builder (internal/mail) for messages sent with HTML only.
//
// # The rendering
//
//   - White space collapses to one space, as a browser does (U+00A0 too, so a cell holding only
//     &nbsp; is empty); <pre> keeps its text as it is.
//   - Paragraphs, headings, lists, tables, block quotes and <pre> are separated by a blank line;
//     <div>, <br>, table rows and list items start a new line. There is never more than one
//     blank line in a row, nor white space at the start or end of the text.
//   - h1 is framed by lines of '*', h2 by lines of '-', h3 underlined with '-'; h4–h6 are plain
//     paragraphs.
//   - A link is "text (url)": its URL follows its text unless the text already is the URL
//     (mailto: is dropped from the URL). A link without text shows the alt text of its image
//     or else the URL alone; links to "#…" and javascript: show only their text.
//   - List items start with "* " (<ul>) or "1. ", "2. " … (<ol>, honouring start=), indented by
//     two spaces per nesting level.
//   - Cells of one table row share a line, separated by " | " (empty cells, such as spacers, add
//     no separator); each row is a line.
//   - <b> and <strong> are wrapped in '*'; block quotes are prefixed with "> " per level.
//   - <head>, <style>, <script>, <title>, <noscript>, <template>, comments (conditional comments
//     for Outlook included) and images outside links are left out.
//
// # The scanner
//
// The document is read in one pass, with a scanner of this package's own that allocates
// nothing per tag (x/net/html's tokenizer allocates for every attribute, and most of an inlined
// email's bytes are style attributes) and builds no tree: a tag ends at the first ">" outside
// quoted attribute values, as in the tokenization of the HTML standard (§13.2.5). Malformed HTML
// gives the text a browser would mostly show. Nesting marks (list indentation, quote prefixes)
// are capped, so the text of deeply nested input stays linear in its size.
//
// It replaced github.com/inbucket/html2text, which builds a tree with x/net/html, runs a
// regular expression over every text node (BenchmarkConvertByHTML2Text compares the cost) and
// ran a table's cells together on one line.
package htmltext

import (
	"bytes"
	"html"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html/atom"
)

// Convert returns the plain-text rendering of the HTML document src (see the package
// documentation). It never fails.
func Convert(src string) string {
	// The text of an email is usually under half its HTML (style attributes, tags, URLs twice).
	return string(Append(make([]byte, 0, len(src)/2), src))
}

// Append appends the text of src (Convert) to dst and returns the extended buffer, so that a
// caller can reuse one.
func Append(dst []byte, src string) []byte {
	w := textWriter{head: -1, out: dst, base: len(dst)}
	skip := atom.Atom(0) // an element whose content is left out, until its end tag
	depth := 0           // nesting of skip (for <head> and <template>, which may nest tags)
	for i := 0; i < len(src); {
		lt := strings.IndexByte(src[i:], '<')
		if lt < 0 {
			lt = len(src) - i
		}
		if lt > 0 && skip == 0 {
			if w.pre > 0 {
				w.raw(unescape(src[i : i+lt]))
			} else {
				w.text(unescape(src[i : i+lt]))
			}
		}
		if i += lt; i >= len(src) {
			break
		}
		t := scanTag(src[i:])
		i += t.n
		switch {
		case t.kind == tagText:
			if skip == 0 {
				w.text("<")
			}
		case t.kind == tagEnd:
			if skip != 0 {
				if t.a == skip {
					if depth--; depth == 0 {
						skip = 0
					}
				}
				continue
			}
			w.end(t.a)
		case t.kind == tagStart:
			if skip == atom.Head && !inHead(t.a) {
				skip = 0 // the body starts, whether or not </head> was written
			}
			switch t.a {
			case atom.Style, atom.Script, atom.Title, atom.Noscript, atom.Iframe, atom.Noembed, atom.Noframes, atom.Textarea, atom.Xmp:
				// Raw text up to the end tag, whatever it holds (skipped or not: "<b>" in a
				// script is no tag); only <textarea> and <xmp> show it.
				body, n := rawText(src[i:], t.name)
				i += n
				if skip == 0 && (t.a == atom.Textarea || t.a == atom.Xmp) {
					w.start(atom.Pre)
					w.raw(unescape(body))
					w.end(atom.Pre)
				}
				continue
			}
			if skip != 0 {
				if t.a == skip {
					depth++
				}
				continue
			}
			switch t.a {
			case atom.Head, atom.Template:
				skip, depth = t.a, 1
			case atom.A:
				w.startLink(t.attr)
			case atom.Img:
				if w.inLink && w.link.alt == "" {
					w.link.alt = unescape(t.attr)
				}
			case atom.Ol:
				start := 1
				if n, err := strconv.Atoi(strings.TrimSpace(t.attr)); err == nil {
					start = n
				}
				w.startList(true, start)
			default:
				w.start(t.a)
			}
		}
	}
	w.finishLink()
	return w.trimmed()
}

// unescape decodes the character references of s (s itself when it has none).
func unescape(s string) string {
	i := strings.IndexByte(s, '&')
	if i < 0 {
		return s
	}
	// html/template writes & as &amp;, so that is often the only reference.
	for j := i; j >= 0; {
		if !strings.HasPrefix(s[j:], "&amp;") {
			return html.UnescapeString(s)
		}
		j += 5
		k := strings.IndexByte(s[j:], '&')
		if k < 0 {
			break
		}
		j += k
	}
	return strings.ReplaceAll(s, "&amp;", "&")
}

// inHead reports the elements that may be in <head>: any other starts the body.
func inHead(a atom.Atom) bool {
	switch a {
	case atom.Head, atom.Meta, atom.Link, atom.Title, atom.Style, atom.Script, atom.Base, atom.Noscript, atom.Template:
		return true
	}
	return false
}

type tagKind int

const (
	tagText  tagKind = iota // a "<" that starts no tag: text
	tagStart                // a start tag (self-closing or not)
	tagEnd                  // an end tag
	tagOther                // a comment, doctype, CDATA section or processing instruction
)

// tag is what scanTag found at a "<".
type tag struct {
	kind tagKind
	n    int       // bytes it takes, from its "<"
	a    atom.Atom // the element; 0 for an unknown one
	name string    // its name as written
	attr string    // the raw value of the one attribute the element needs (a href, img alt, ol start)
}

// scanTag reads the markup that starts at s[0] == '<', following the tokenization of the HTML
// standard (§13.2.5) as far as the text needs it: a tag ends at the first ">" outside quoted
// attribute values, a comment at "-->", and an unterminated one at the end of s.
func scanTag(s string) tag {
	switch {
	case strings.HasPrefix(s, "<!--"):
		end := strings.Index(s[4:], "-->")
		if end < 0 {
			return tag{kind: tagOther, n: len(s)}
		}
		return tag{kind: tagOther, n: 4 + end + 3}
	case len(s) > 1 && (s[1] == '!' || s[1] == '?'), len(s) > 2 && s[1] == '/' && !isLetter(s[2]):
		// Doctype, CDATA, processing instruction, bogus comment: up to the next ">".
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return tag{kind: tagOther, n: len(s)}
		}
		return tag{kind: tagOther, n: end + 1}
	case len(s) > 2 && s[1] == '/':
		t := tag{kind: tagEnd}
		t.name, t.a = tagName(s[2:])
		end := strings.IndexByte(s, '>')
		if end < 0 {
			end = len(s) - 1
		}
		t.n = end + 1
		return t
	case len(s) > 1 && isLetter(s[1]):
		t := tag{kind: tagStart}
		t.name, t.a = tagName(s[1:])
		var want string
		switch t.a {
		case atom.A:
			want = "href"
		case atom.Img:
			want = "alt"
		case atom.Ol:
			want = "start"
		}
		j := 1 + len(t.name)
		for {
			for j < len(s) && (isSpace(s[j]) || s[j] == '/') {
				j++
			}
			if j >= len(s) {
				t.n = len(s)
				return t
			}
			if s[j] == '>' {
				t.n = j + 1
				return t
			}
			k := j
			for j < len(s) && !isSpace(s[j]) && s[j] != '/' && s[j] != '>' && (s[j] != '=' || j == k) {
				j++
			}
			key := s[k:j]
			for j < len(s) && isSpace(s[j]) {
				j++
			}
			if j >= len(s) || s[j] != '=' {
				continue
			}
			j++
			for j < len(s) && isSpace(s[j]) {
				j++
			}
			var val string
			if j < len(s) && (s[j] == '"' || s[j] == '\'') {
				end := strings.IndexByte(s[j+1:], s[j])
				if end < 0 {
					return tag{kind: t.kind, n: len(s), a: t.a, name: t.name}
				}
				val = s[j+1 : j+1+end]
				j += end + 2
			} else {
				v := j
				for j < len(s) && !isSpace(s[j]) && s[j] != '>' {
					j++
				}
				val = s[v:j]
			}
			if want != "" && t.attr == "" && strings.EqualFold(key, want) {
				t.attr = unescape(val)
			}
		}
	}
	return tag{kind: tagText, n: 1}
}

// tagName returns the name at the start of s and its atom (0 for an unknown element).
func tagName(s string) (string, atom.Atom) {
	n := 0
	for n < len(s) && !isSpace(s[n]) && s[n] != '/' && s[n] != '>' {
		n++
	}
	name := s[:n]
	var buf [16]byte
	if n > len(buf) {
		return name, 0
	}
	for i := 0; i < n; i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return name, atom.Lookup(buf[:n])
}

// rawText returns the content of a raw-text element (its start tag read), up to its end tag
// "</name" (any case) followed by white space, "/" or ">", and the bytes taken with the end tag.
func rawText(s, name string) (string, int) {
	for i := 0; ; {
		j := strings.Index(s[i:], "</")
		if j < 0 {
			return s, len(s)
		}
		i += j
		rest := s[i+2:]
		if len(rest) >= len(name) && strings.EqualFold(rest[:len(name)], name) &&
			(len(rest) == len(name) || isSpace(rest[len(name)]) || rest[len(name)] == '/' || rest[len(name)] == '>') {
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				return s[:i], len(s)
			}
			return s[:i], i + 2 + end + 1
		}
		i += 2
	}
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// textWriter builds the text. Breaks, spaces and separators are owed, and written only before
// the next text, so that nothing dangles at the end of a line or of the document.
type textWriter struct {
	out      []byte
	breaks   int  // newlines owed before the next text: 1 a new line, 2 a blank line
	space    bool // a space owed before the next text on this line
	sep      bool // a table-cell separator owed before the next text on this line
	lineText bool // the current line has text
	quote    int  // <blockquote> depth
	quoted   int  // the <blockquote> depth of the last line written
	pre      int  // <pre> depth
	preStart bool // no text yet since <pre>
	lists    []list
	bullet   string // a list item's marker, owed before its first text
	bold     []bool // per open <b>/<strong>: whether its opening '*' was written
	boldOwed int    // opening '*' owed before the next text
	heading  atom.Atom
	head     int  // where the open heading's text starts in out; -1 before its text
	link     link // valid when inLink
	inLink   bool
	base     int // where the text starts in out
}

type list struct {
	ordered bool
	n       int
}

type link struct {
	href  string
	alt   string
	start int // where the link's text starts in out; -1 before its text
}

// trimmed returns out with the text's surrounding white space removed.
func (w *textWriter) trimmed() []byte {
	text := bytes.Trim(w.out[w.base:], " \t\n")
	n := copy(w.out[w.base:], text)
	return w.out[:w.base+n]
}

// block owes n newlines (1 or 2) before the next text.
func (w *textWriter) block(n int) {
	w.breaks = max(w.breaks, n)
	w.space, w.sep = false, false
}

// blockBreaks returns the breaks (block) a block element owes before and after itself: 2 for
// the ones set apart by a blank line, 1 for the ones that only start a line, 0 for the other
// elements (lists, list items and <hr> are treated on their own).
func blockBreaks(a atom.Atom) int {
	switch a {
	case atom.P, atom.Table, atom.Blockquote, atom.Pre, atom.Dl,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return 2
	case atom.Div, atom.Tr, atom.Dt, atom.Dd, atom.Section, atom.Article, atom.Header, atom.Footer,
		atom.Nav, atom.Aside, atom.Main, atom.Center, atom.Address, atom.Figure, atom.Figcaption,
		atom.Form, atom.Fieldset, atom.Caption:
		return 1
	}
	return 0
}

func (w *textWriter) start(a atom.Atom) {
	if n := blockBreaks(a); n > 0 {
		w.block(n)
	}
	switch a {
	case atom.Br:
		// Each <br> ends a line, so two make a blank line.
		if w.breaks < 2 && (w.lineText || w.breaks > 0) {
			w.breaks++
		}
		w.space, w.sep = false, false
	case atom.Hr:
		w.block(2) // a void element: there is no end tag to owe the blank line after it
	case atom.Blockquote:
		w.quote++
	case atom.Pre:
		w.pre++
		w.preStart = true
	case atom.H1, atom.H2, atom.H3:
		w.heading, w.head = a, -1
	case atom.Ul:
		w.startList(false, 1)
	case atom.Li:
		w.block(1)
		indent := strings.Repeat("  ", min(max(len(w.lists)-1, 0), maxTextNesting))
		switch {
		case len(w.lists) == 0:
			w.bullet = "* "
		case w.lists[len(w.lists)-1].ordered:
			l := &w.lists[len(w.lists)-1]
			w.bullet = indent + strconv.Itoa(l.n) + ". "
			l.n++
		default:
			w.bullet = indent + "* "
		}
	case atom.Td, atom.Th:
		if w.lineText && w.breaks == 0 {
			w.sep = true
		}
	case atom.B, atom.Strong:
		w.bold = append(w.bold, false)
		w.boldOwed++
	}
}

func (w *textWriter) startList(ordered bool, n int) {
	w.listBlock()
	w.lists = append(w.lists, list{ordered: ordered, n: n})
}

// listBlock owes the breaks around a list: a blank line outside any list, a new line in one.
func (w *textWriter) listBlock() {
	if len(w.lists) == 0 {
		w.block(2)
	} else {
		w.block(1)
	}
}

func (w *textWriter) end(a atom.Atom) {
	switch a {
	case atom.Blockquote:
		w.quote = max(w.quote-1, 0)
	case atom.Pre:
		w.pre = max(w.pre-1, 0)
	case atom.H1, atom.H2, atom.H3:
		if w.heading == a {
			w.endHeading()
		}
	case atom.Ul, atom.Ol:
		if len(w.lists) > 0 {
			w.lists = w.lists[:len(w.lists)-1]
		}
		w.listBlock()
	case atom.Li:
		w.bullet = ""
		w.block(1)
	case atom.A:
		w.finishLink()
	case atom.B, atom.Strong:
		if n := len(w.bold); n > 0 {
			if w.bold[n-1] {
				w.out = append(w.out, '*')
			} else {
				w.boldOwed--
			}
			w.bold = w.bold[:n-1]
		}
	}
	if n := blockBreaks(a); n > 0 {
		w.block(n)
	}
}

// endHeading frames or underlines the heading's text.
func (w *textWriter) endHeading() {
	start := w.head
	h := w.heading
	w.heading, w.head = 0, -1
	if start < 0 {
		return
	}
	width := 0
	for rest := w.out[start:]; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		width = max(width, utf8.RuneCount(line))
	}
	mark := byte('-')
	if h == atom.H1 {
		mark = '*'
	}
	end := len(w.out)
	if h != atom.H3 {
		// The same rule above, with its line end, before the text.
		w.out = slices.Grow(w.out, 2*(width+1))
		w.out = w.out[:end+width+1]
		copy(w.out[start+width+1:], w.out[start:end])
		fill(w.out[start:start+width], mark)
		w.out[start+width] = '\n'
		end += width + 1
	}
	w.out = append(w.out, '\n')
	w.out = append(w.out, make([]byte, width)...)
	fill(w.out[end+1:], mark)
}

func fill(b []byte, c byte) {
	for i := range b {
		b[i] = c
	}
}

func (w *textWriter) startLink(href string) {
	w.finishLink() // <a> cannot nest: a new one closes the open one
	w.link, w.inLink = link{href: strings.TrimSpace(href), start: -1}, true
}

// finishLink writes the URL of the open link after its text.
func (w *textWriter) finishLink() {
	if !w.inLink {
		return
	}
	l := &w.link
	w.inLink = false
	href := l.href
	if strings.HasPrefix(href, "#") || hasPrefixFold(href, "javascript:") {
		href = ""
	} else if hasPrefixFold(href, "mailto:") {
		href = href[len("mailto:"):]
		if i := strings.IndexByte(href, '?'); i >= 0 {
			href = href[:i]
		}
	}
	empty, same := true, false // the link's text, and whether it is the URL
	if l.start >= 0 {
		text := bytes.TrimSpace(w.out[l.start:])
		empty, same = len(text) == 0, string(text) == href || string(text) == l.href
	} else if l.alt != "" {
		w.text(l.alt)
		empty, same = false, l.alt == href || l.alt == l.href
	}
	switch {
	case href == "" || same:
	case empty:
		w.text(href)
	default:
		w.space = true
		w.word("(")
		w.out = append(w.out, href...)
		w.out = append(w.out, ')')
	}
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case; prefix is lower case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// text writes text with its white space collapsed.
func (w *textWriter) text(b string) {
	for len(b) > 0 {
		// A run of white space…
		if i := spaceLen(b); i > 0 {
			w.space = true
			b = b[i:]
		}
		// … then a word.
		j := wordLen(b)
		if j == 0 {
			continue
		}
		w.word(b[:j])
		// Nothing is owed after a word but one space before the next, until the end of b: the
		// rest of b is written as word would write it, copying the runs where white space is
		// already one space between words.
		b = b[j:]
		out, start := w.out, 0
		for k := 0; k < len(b); {
			if !textSpace[b[k]] {
				k++
				continue
			}
			n := spaceLen(b[k:])
			if n == 0 || n == 1 && b[k] == ' ' && k+1 < len(b) {
				k++ // 0xc2 starting another character, or a space that stays as it is
				continue
			}
			out = append(out, b[start:k]...)
			if k += n; k == len(b) {
				w.space = true
			} else {
				out = append(out, ' ')
			}
			start = k
		}
		w.out = append(out, b[start:]...)
		return
	}
}

// textSpace marks the bytes that are white space in text, and 0xc2, the first byte of U+00A0.
var textSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true, '\f': true, 0xc2: true}

// spaceLen returns the length of the white space (U+00A0 included) at the start of b.
func spaceLen(b string) int {
	i := 0
	for i < len(b) && textSpace[b[i]] {
		if b[i] == 0xc2 {
			if i+1 >= len(b) || b[i+1] != 0xa0 {
				break
			}
			i++
		}
		i++
	}
	return i
}

// wordLen returns the length of the word at the start of b: up to white space or U+00A0.
func wordLen(b string) int {
	j := 0
	for j < len(b) {
		if textSpace[b[j]] && (b[j] != 0xc2 || j+1 < len(b) && b[j+1] == 0xa0) {
			break
		}
		j++
	}
	return j
}

// raw writes the text of a <pre> as it is, but a line end right after <pre> (HTML §13.2.6.4.7).
func (w *textWriter) raw(b string) {
	if w.preStart {
		w.preStart = false
		b = strings.TrimPrefix(strings.TrimPrefix(b, "\r"), "\n")
	}
	for len(b) > 0 {
		i := strings.IndexByte(b, '\n')
		if i < 0 {
			w.word(b)
			return
		}
		if line := strings.TrimSuffix(b[:i], "\r"); line != "" {
			w.word(line)
		}
		w.newline()
		w.lineText = false
		b = b[i+1:]
	}
}

// newline ends the line. (The blockquote prefix of the next line is written with its first word.)
func (w *textWriter) newline() {
	w.out = append(w.out, '\n')
}

// word writes a word (or, in <pre>, a piece of a line) after what is owed before it.
func (w *textWriter) word(b string) {
	if w.breaks > 0 {
		if len(w.out) > w.base {
			if w.lineText {
				w.newline()
			}
			if w.breaks > 1 {
				// A blank line inside a quote is quoted; one that opens or closes a quote
				// is not.
				for range min(w.quote, w.quoted, maxTextNesting) {
					w.out = append(w.out, '>')
				}
				w.newline()
			}
		}
		w.breaks, w.lineText = 0, false
	}
	switch {
	case !w.lineText:
		w.out = append(w.out, w.quotePrefix()...)
		w.out = append(w.out, w.bullet...)
		w.bullet = ""
		w.quoted = w.quote
	case w.sep:
		w.out = append(w.out, " | "...)
	case w.space:
		w.out = append(w.out, ' ')
	}
	w.space, w.sep = false, false
	if w.heading != 0 && w.head < 0 {
		w.head = len(w.out)
	}
	if w.inLink && w.link.start < 0 {
		w.link.start = len(w.out)
	}
	for ; w.boldOwed > 0; w.boldOwed-- {
		w.out = append(w.out, '*')
		w.bold[len(w.bold)-w.boldOwed] = true
	}
	w.out = append(w.out, b...)
	w.lineText = true
}

// quotePrefix is what starts a line inside block quotes: "> ", ">> " …
func (w *textWriter) quotePrefix() []byte {
	if w.quote == 0 {
		return nil
	}
	return append(bytes.Repeat([]byte{'>'}, min(w.quote, maxTextNesting)), ' ')
}

// maxTextNesting bounds the marks of nesting (list indentation, quote prefixes) a line gets,
// so that the text of deeply nested input stays linear in its size.
const maxTextNesting = 8
