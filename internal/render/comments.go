package render

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"text/template/parse"
)

// Conditional comments
//
// html/template removes HTML comments from a template's text, and with them the conditional
// comments email templates address Outlook with:
//
//	<!--[if mso]><table><tr><td width="600"><![endif]-->
//	<!--[if !mso]><!--> … <!--<![endif]-->
//
// Compile swaps each such comment (one whose content starts with "[if" or "<![endif]") for a
// marker that html/template passes through as text, and Render swaps the comments back into
// the output. Markers carry a random nonce per Template, so data cannot produce one. A
// comment that an action interrupts is left to html/template (and removed).

// conditionals holds a template's conditional comments.
type conditionals struct {
	prefix   []byte   // "\x01" + nonce; a marker is prefix + index + "\x01"
	comments [][]byte // by index
}

const markerEnd = 0x01

// protectConditionals replaces the conditional comments in set's text nodes by markers. It
// returns nil when there are none.
func protectConditionals(set *partSet) *conditionals {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
	c := &conditionals{prefix: append([]byte{markerEnd}, hex.EncodeToString(nonce[:])...)}
	for _, name := range set.names {
		walkNodes(set.trees[name].Root, func(n parse.Node) {
			if t, ok := n.(*parse.TextNode); ok {
				t.Text = c.protect(t.Text)
			}
		})
	}
	if len(c.comments) == 0 {
		return nil
	}
	return c
}

func (c *conditionals) protect(text []byte) []byte {
	var out []byte
	at := 0
	for i := 0; ; {
		j := bytes.Index(text[i:], []byte("<!--"))
		if j < 0 {
			break
		}
		start := i + j
		body := text[start+4:]
		if !bytes.HasPrefix(body, []byte("[if")) && !bytes.HasPrefix(body, []byte("<![endif]")) {
			i = start + 4
			continue
		}
		k := bytes.Index(body, []byte("-->"))
		if k < 0 {
			break // interrupted by an action: html/template will drop it
		}
		end := start + 4 + k + 3
		out = append(out, text[at:start]...)
		out = append(out, c.prefix...)
		out = strconv.AppendInt(out, int64(len(c.comments)), 10)
		out = append(out, markerEnd)
		c.comments = append(c.comments, bytes.Clone(text[start:end]))
		at, i = end, end
	}
	if out == nil {
		return text
	}
	return append(out, text[at:]...)
}

// restore puts the comments back into rendered html.
func (c *conditionals) restore(html []byte) []byte {
	if c == nil || bytes.IndexByte(html, markerEnd) < 0 {
		return html
	}
	var out []byte
	at := 0
	for {
		j := bytes.Index(html[at:], c.prefix)
		if j < 0 {
			break
		}
		start := at + j
		k := start + len(c.prefix)
		end := bytes.IndexByte(html[k:], markerEnd)
		if end < 0 {
			break
		}
		n, err := strconv.Atoi(string(html[k : k+end]))
		if err != nil || n < 0 || n >= len(c.comments) {
			break
		}
		out = append(out, html[at:start]...)
		out = append(out, c.comments[n]...)
		at = k + end + 1
	}
	if out == nil {
		return html
	}
	return append(out, html[at:]...)
}
