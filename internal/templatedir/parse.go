package templatedir

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// block is one {{define "…"}} of a file: its body and where the body starts in the file.
type block struct {
	body       string
	line, col  int // 1-based position of the body's first byte in the file
	defineLine int // line of the {{define}} itself
}

// file is a parsed template file.
type file struct {
	blocks map[string]block // "subject", "html", "text"
	meta   map[string]meta  // "layout", "description"
}

type meta struct {
	value string
	line  int
}

// parts are the blocks a file may define.
var parts = []string{"subject", "html", "text"}

// metaKeys are the keys a top-level comment may set.
var metaKeys = []string{"layout", "description"}

// parseError is a syntax error of a file at a position.
type parseError struct {
	line, col int
	msg       string
}

func (e *parseError) Error() string { return fmt.Sprintf("%d:%d: %s", e.line, e.col, e.msg) }

// parseFile splits a template file into its blocks. At the top level a file holds only
// {{define "subject"}}, {{define "html"}} and {{define "text"}} blocks, comments (of which
// {{/* layout: NAME */}} and {{/* description: TEXT */}} set the template's layout and
// description) and white space. A block's body is the text between its {{define}} and the
// matching {{end}}, with Go's trim markers applied ({{define "text" -}} drops the white space
// after it, {{- end}} the white space before); the body's own syntax is left to the template
// compiler, which reports positions relative to the body (see block.position).
func parseFile(src string) (file, error) {
	f := file{blocks: map[string]block{}, meta: map[string]meta{}}
	pos := 0
	for {
		// Skip white space between top-level items.
		for pos < len(src) && unicode.IsSpace(rune(src[pos])) {
			pos++
		}
		if pos >= len(src) {
			return f, nil
		}
		if !strings.HasPrefix(src[pos:], "{{") {
			return f, errAt(src, pos, "text outside a {{define}} block; a template file holds only "+
				`{{define "subject"}}, {{define "html"}} and {{define "text"}} blocks and comments`)
		}
		a, err := scanAction(src, pos)
		if err != nil {
			return f, err
		}
		switch {
		case a.comment:
			key, value, ok := strings.Cut(strings.TrimSpace(a.inner), ":")
			key = strings.TrimSpace(key)
			if ok && slices.Contains(metaKeys, key) {
				if _, dup := f.meta[key]; dup {
					return f, errAt(src, pos, fmt.Sprintf("%s is set twice", key))
				}
				line, _ := position(src, pos)
				f.meta[key] = meta{value: strings.TrimSpace(value), line: line}
			}
			pos = a.end
		case a.keyword == "define":
			name, ok := defineName(a.inner)
			if !ok || !slices.Contains(parts, name) {
				return f, errAt(src, pos, fmt.Sprintf(`unknown block %s: a template file defines "subject", "html" and "text"`, strings.TrimSpace(strings.TrimPrefix(a.inner, "define"))))
			}
			if _, dup := f.blocks[name]; dup {
				return f, errAt(src, pos, fmt.Sprintf("%q is defined twice", name))
			}
			b, next, err := scanBlock(src, a)
			if err != nil {
				return f, err
			}
			b.defineLine, _ = position(src, pos)
			f.blocks[name] = b
			pos = next
		default:
			return f, errAt(src, pos, "only {{define}} blocks and comments may be at the top level of a template file")
		}
	}
}

// action is one {{…}} of a file.
type action struct {
	start, end int    // src[start:end] is the whole action, delimiters included
	inner      string // between the delimiters, trim markers removed
	keyword    string // first word: define, if, range, with, block, end, else, … ("" otherwise)
	comment    bool
	trimLeft   bool // {{- : white space before the action is trimmed
	trimRight  bool // -}} : white space after the action is trimmed
}

// scanAction reads the action starting at src[start:] ("{{"), skipping strings, raw strings,
// character constants and comments, which may contain "}}".
func scanAction(src string, start int) (action, error) {
	a := action{start: start}
	i := start + 2
	if strings.HasPrefix(src[i:], "- ") || strings.HasPrefix(src[i:], "-\t") || strings.HasPrefix(src[i:], "-\n") || strings.HasPrefix(src[i:], "-\r") {
		a.trimLeft = true
		i += 2
	}
	body := i
	if rest := strings.TrimLeft(src[i:], " \t\r\n"); strings.HasPrefix(rest, "/*") {
		a.comment = true
		j := strings.Index(rest, "*/")
		if j < 0 {
			return a, errAt(src, start, "unclosed comment")
		}
		i = len(src) - len(rest) + j + 2
		a.inner = rest[2:j]
		after := src[i:]
		switch {
		case strings.HasPrefix(after, "}}"):
			a.end = i + 2
		case strings.HasPrefix(after, " -}}"):
			a.end, a.trimRight = i+4, true
		default:
			return a, errAt(src, start, "a comment must end with */}}")
		}
		return a, nil
	}
	for i < len(src) {
		switch c := src[i]; c {
		case '"', '\'':
			j := i + 1
			for j < len(src) && src[j] != c && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) || src[j] != c {
				return a, errAt(src, i, "unterminated quoted string")
			}
			i = j + 1
		case '`':
			j := strings.IndexByte(src[i+1:], '`')
			if j < 0 {
				return a, errAt(src, i, "unterminated raw string")
			}
			i += j + 2
		case '}':
			if strings.HasPrefix(src[i:], "}}") {
				inner := src[body:i]
				if strings.HasSuffix(inner, " -") || strings.HasSuffix(inner, "\t-") || strings.HasSuffix(inner, "\n-") {
					a.trimRight = true
					inner = inner[:len(inner)-2]
				}
				a.inner = strings.TrimSpace(inner)
				a.keyword, _, _ = strings.Cut(a.inner, " ")
				a.keyword = strings.TrimRight(a.keyword, "\t\r\n")
				a.end = i + 2
				return a, nil
			}
			i++
		default:
			i++
		}
	}
	return a, errAt(src, start, "unclosed action: no }}")
}

// scanBlock reads the body of the {{define}} def up to its matching {{end}} and returns the block
// and the position after the {{end}}.
func scanBlock(src string, def action) (block, int, error) {
	depth := 0
	i := def.end
	for {
		j := strings.Index(src[i:], "{{")
		if j < 0 {
			return block{}, 0, errAt(src, def.start, "{{define}} without a matching {{end}}")
		}
		a, err := scanAction(src, i+j)
		if err != nil {
			return block{}, 0, err
		}
		i = a.end
		switch a.keyword {
		case "if", "range", "with", "block", "define":
			depth++
		case "end":
			if depth > 0 {
				depth--
				continue
			}
			start, stop := def.end, a.start
			if def.trimRight {
				for start < stop && unicode.IsSpace(rune(src[start])) {
					start++
				}
			}
			if a.trimLeft {
				for stop > start && unicode.IsSpace(rune(src[stop-1])) {
					stop--
				}
			}
			line, col := position(src, start)
			return block{body: src[start:stop], line: line, col: col}, a.end, nil
		}
	}
}

// defineName returns the quoted name of a define action's inner text (`define "html"`).
func defineName(inner string) (string, bool) {
	rest := strings.TrimSpace(strings.TrimPrefix(inner, "define"))
	if len(rest) < 2 || (rest[0] != '"' && rest[0] != '`') || rest[len(rest)-1] != rest[0] {
		return "", false
	}
	return rest[1 : len(rest)-1], true
}

// position returns the 1-based line and column (in bytes) of offset in src.
func position(src string, offset int) (line, col int) {
	before := src[:offset]
	line = 1 + strings.Count(before, "\n")
	col = offset - (strings.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func errAt(src string, offset int, msg string) *parseError {
	line, col := position(src, offset)
	return &parseError{line: line, col: col, msg: msg}
}

// fileLine converts a position in a block's body (1-based; column 0 when unknown) to one in the
// file.
func (b block) fileLine(line, col int) (int, int) {
	if line <= 1 {
		if col > 0 {
			col += b.col - 1
		}
		return b.line, col
	}
	return b.line + line - 1, col
}
