package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/postie/postie/internal/htmltext"
)

// Template is a compiled Source: parsed and linked templates, the compiled schema and the CSS
// inlining plan. It is immutable and safe for concurrent use.
//
// Go templates take their functions when they are built, and some functions depend on the
// message (unsubscribe_url, the default time zone, the time budget), so a Template keeps a
// free list of instances, each with its own function state, and a render takes one for its
// duration. The list grows to the number of concurrent renders (up to maxFreeInstances) and
// is kept.
type Template struct {
	name                string
	schema              *jsonschema.Schema
	subject, html, text *partSet
	css                 *cssPlan      // nil: nothing to inline when rendering
	conds               *conditionals // nil: no conditional comments to restore
	zones               map[string]*time.Location
	notes               []string

	mu   sync.Mutex
	free []*instance
}

// MessageInfo is {{.message}}: the id and stream of the message being rendered.
type MessageInfo struct {
	ID     string
	Stream string
}

// Links are the per-recipient links unsubscribe_url and preferences_url return. An empty one
// renders as its placeholder (PlaceholderUnsubscribeURL, PlaceholderPreferencesURL).
type Links struct {
	UnsubscribeURL string
	PreferencesURL string
}

// Context is what one render sees.
type Context struct {
	Data     any            // the message's data: decoded JSON (map[string]any …), see DecodeData
	Contact  map[string]any // nil when the recipient is not a known contact (renders as empty)
	Message  MessageInfo    // {{.message.id}}, {{.message.stream}}
	Campaign map[string]any // nil when the message is not a campaign's (renders as empty)
	Event    map[string]any // the event a trigger's message is for (nil renders as empty)
	Events   []any          // a digest's events' data (nil renders as an empty list)
	Links    Links          // unsubscribe_url, preferences_url
	TimeZone *time.Location // default zone of date; nil = UTC
}

// Output is a rendered message.
type Output struct {
	Subject  string
	HTML     string // "" when the template has no html
	Text     string // the text template's output, or text generated from HTML
	Warnings []string
}

// Name returns the Source's name.
func (t *Template) Name() string { return t.name }

// Notes returns what Compile noticed without failing: CSS rules it kept in a <style> block
// because they cannot be inlined, or why CSS is inlined per render rather than once. They suit
// a warning in the answer to a template upload.
func (t *Template) Notes() []string { return append([]string(nil), t.notes...) }

// HasText reports whether the template has its own text part (otherwise Render generates the
// text from the HTML).
func (t *Template) HasText() bool { return t.text != nil }

// instance is one executable copy of a Template's parts with its own function state. It
// renders one message at a time.
type instance struct {
	st      *state
	subject *texttemplate.Template
	html    *htmltemplate.Template
	text    *texttemplate.Template
	out     limitedBuffer

	// The same parts for the direct executor (exec.go); nil when it cannot run them.
	subjectProg, htmlProg, textProg *program
	exec                            executor
	root, message                   map[string]any // the dot, refilled by every render
}

func (t *Template) newInstance() (*instance, error) {
	st := &state{zones: t.zones}
	fm := funcs(st)
	inst := &instance{st: st, root: make(map[string]any, 4), message: make(map[string]any, 2)}
	inst.out.budget = &st.budget
	inst.exec.st = st
	if t.subject != nil {
		inst.subject = t.subject.textTemplate(fm)
		inst.subjectProg = textProgram(inst.subject)
	}
	if t.text != nil {
		inst.text = t.text.textTemplate(fm)
		inst.textProg = textProgram(inst.text)
	}
	if t.html != nil {
		h, err := t.html.htmlTemplate(fm)
		if err != nil {
			return nil, err
		}
		inst.html = h
		// Make html/template check the template now (it escapes on first execution): execute
		// with a spent budget, so the run stops at the first write, call or iteration, and
		// keep only the escaper's errors.
		st.reset(context.Background(), time.Time{})
		st.err = ErrTimeout
		inst.out.reset(0)
		err = h.Execute(&inst.out, nil)
		var he *htmltemplate.Error
		if errors.As(err, &he) {
			return nil, t.execError("html", t.html, Limits{}, err)
		}
		// The trees are escaped now: the direct executor runs them as they are.
		inst.htmlProg = newProgram(h.Tree, func(name string) *parse.Tree {
			if c := h.Lookup(name); c != nil {
				return c.Tree
			}
			return nil // a template html/template derived for another context
		}, true)
	}
	return inst, nil
}

func textProgram(tm *texttemplate.Template) *program {
	return newProgram(tm.Tree, func(name string) *parse.Tree {
		if c := tm.Lookup(name); c != nil {
			return c.Tree
		}
		return nil
	}, false)
}

// execute runs one part into inst.out: with the direct executor when it can run it, otherwise
// (or when it stops with errIndirect) with text/template's.
func (inst *instance) execute(p *program, tm interface{ Execute(io.Writer, any) error }, root any) error {
	if p != nil {
		err := inst.exec.run(p, &inst.out, root)
		if err != errIndirect {
			return err
		}
		inst.out.buf = inst.out.buf[:0]
	}
	return tm.Execute(&inst.out, root)
}

func (set *partSet) textTemplate(fm map[string]any) *texttemplate.Template {
	tm := texttemplate.New(set.root).Funcs(fm).Option("missingkey=error")
	for _, name := range set.names {
		// Text templates only read their trees, so instances share them.
		if _, err := tm.AddParseTree(name, set.trees[name]); err != nil {
			panic("render: AddParseTree: " + err.Error()) // only fails after execution
		}
	}
	return tm
}

func (set *partSet) htmlTemplate(fm map[string]any) (*htmltemplate.Template, error) {
	tm := htmltemplate.New(set.root).Funcs(fm).Option("missingkey=error")
	var root *htmltemplate.Template
	for _, name := range set.names {
		// html/template rewrites the trees it escapes, so each instance gets its own copy.
		added, err := tm.AddParseTree(name, set.trees[name].Copy())
		if err != nil {
			return nil, &Error{Field: "html", Message: err.Error()}
		}
		if name == set.root {
			root = added // not tm: AddParseTree replaces the set's entry for the name
		}
	}
	return root, nil
}

func (t *Template) acquire() (*instance, error) {
	t.mu.Lock()
	if n := len(t.free); n > 0 {
		inst := t.free[n-1]
		t.free = t.free[:n-1]
		t.mu.Unlock()
		return inst, nil
	}
	t.mu.Unlock()
	return t.newInstance()
}

// maxKeptBuffer is the largest output buffer an instance keeps between renders.
const maxKeptBuffer = 256 << 10

// maxFreeInstances is how many idle instances a Template keeps. More concurrent renders than
// that still work; their extra instances are built for the render (about as long as Compile)
// and dropped after it.
const maxFreeInstances = 128

func (t *Template) release(inst *instance) {
	inst.st.ctx, inst.st.links, inst.st.tz = nil, Links{}, nil
	clear(inst.root) // the caller's data
	clear(inst.message)
	if cap(inst.out.buf) > maxKeptBuffer {
		inst.out.buf = nil
	}
	t.mu.Lock()
	if len(t.free) < maxFreeInstances {
		t.free = append(t.free, inst)
	}
	t.mu.Unlock()
}

// ClipWarning is the warning an HTML part of n bytes gets when Gmail would clip its message
// (over ClipWarnSize), for a template's render and for HTML sent as it is alike.
func ClipWarning(n int) (string, bool) {
	if n <= ClipWarnSize {
		return "", false
	}
	return fmt.Sprintf("html is %s; Gmail clips messages over 102 KB", size(n)), true
}

// Render renders the subject, the HTML (layouts applied, CSS inlined) and the text (generated
// from the HTML when the template has none) within lim. Errors are *Error on the part at
// fault; those that stop a render for its budget carry ErrOutputLimit or ErrTimeout in Err,
// and cancellation of ctx carries the context's error.
//
// What the budget bounds: every part's output (MaxOutput); time (Timeout, and ctx) at every
// write, every function call, every printed value and every range iteration, so loops stop
// whether or not they print. Templates cannot recurse (Compile refuses it) and data is at
// most MaxDataSize, so what runs between two checkpoints is one builtin call on data of that
// size. What it does not bound: the time of such a single call (printf with a huge width is
// capped by fmt at 1e6), and memory beyond MaxOutput per part plus the data itself.
func (t *Template) Render(ctx context.Context, c Context, lim Limits) (Output, error) {
	lim = lim.withDefaults()
	deadline := time.Now().Add(lim.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	inst, err := t.acquire()
	if err != nil {
		return Output{}, err
	}
	defer t.release(inst)
	st := inst.st
	st.reset(ctx, deadline)
	st.links, st.tz = c.Links, c.TimeZone
	if st.tz == nil {
		st.tz = time.UTC
	}
	if err := st.checkNow(); err != nil {
		return Output{}, t.execError("subject", t.subject, lim, err)
	}
	root := rootData(c, inst.root, inst.message)
	var out Output
	if inst.subject != nil {
		inst.out.reset(lim.MaxOutput)
		if err := inst.execute(inst.subjectProg, inst.subject, root); err != nil {
			return Output{}, t.execError("subject", t.subject, lim, err)
		}
		out.Subject = strings.TrimSpace(inst.out.String())
		if i := strings.IndexFunc(out.Subject, isControl); i >= 0 {
			return Output{}, &Error{Field: "subject",
				Message: fmt.Sprintf("the rendered subject must be one line without control characters; it has %q at byte %d", out.Subject[i], i)}
		}
	}
	if inst.html != nil {
		inst.out.reset(lim.MaxOutput)
		if err := inst.execute(inst.htmlProg, inst.html, root); err != nil {
			return Output{}, t.execError("html", t.html, lim, err)
		}
		html := t.conds.restore(inst.out.buf)
		if t.css != nil {
			inlined, err := t.css.inline(html, &st.budget)
			if err != nil {
				return Output{}, t.execError("html", t.html, lim, err)
			}
			out.HTML = inlined
		} else {
			out.HTML = string(html)
		}
		if len(out.HTML) > lim.MaxOutput {
			return Output{}, t.execError("html", t.html, lim, ErrOutputLimit)
		}
		if w, ok := ClipWarning(len(out.HTML)); ok {
			out.Warnings = append(out.Warnings, w)
		}
	}
	if inst.text != nil {
		inst.out.reset(lim.MaxOutput)
		if err := inst.execute(inst.textProg, inst.text, root); err != nil {
			return Output{}, t.execError("text", t.text, lim, err)
		}
		out.Text = inst.out.String()
	} else if out.HTML != "" {
		if err := st.checkNow(); err != nil {
			return Output{}, t.execError("text", nil, lim, err)
		}
		inst.out.buf = htmltext.Append(inst.out.buf[:0], out.HTML)
		if len(inst.out.buf) > lim.MaxOutput {
			return Output{}, t.execError("text", nil, lim, ErrOutputLimit)
		}
		out.Text = inst.out.String()
	}
	return out, nil
}

// rootData is the template's dot: {{.data}}, {{.contact}}, {{.message}}, {{.campaign}}, {{.event}}
// and {{.events}}. Missing data and
// an unknown contact are empty objects, so {{if .contact}} is false and {{.contact.name}} is
// a missing-key error rather than a nil dereference.
//
// It fills root and message when they are not nil: an instance's maps, reused from render to
// render (templates only read their data, and the instance clears them when it is released).
func rootData(c Context, root, message map[string]any) map[string]any {
	data, _ := plainNumbers(c.Data)
	if data == nil {
		data = map[string]any{}
	}
	var contact any
	if c.Contact != nil {
		contact, _ = plainNumbers(c.Contact)
	} else {
		contact = map[string]any{}
	}
	var campaign any = map[string]any{}
	if c.Campaign != nil {
		campaign = c.Campaign
	}
	var event any = map[string]any{}
	if c.Event != nil {
		event, _ = plainNumbers(c.Event)
	}
	var events any = []any{}
	if c.Events != nil {
		events, _ = plainNumbers(c.Events)
	}
	if root == nil || message == nil {
		root, message = make(map[string]any, 6), make(map[string]any, 2)
	}
	message["id"], message["stream"] = c.Message.ID, c.Message.Stream
	root["data"], root["contact"], root["message"], root["campaign"] = data, contact, message, campaign
	root["event"], root["events"] = event, events
	return root
}

// isControl reports a character a header must not contain: C0 controls but tab, and DEL
// (email-rules §5.3).
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || r == 0x7f
}

// plainNumbers returns v with every float64 (what encoding/json gives for numbers) and every
// json.Number in exponent form replaced by a json.Number in plain decimal notation, so that
// 1000000 prints as 1000000 and not 1e+06. It copies only the maps and slices on the way to
// a replaced number, and reports whether it replaced any: data from DecodeData has plain
// json.Numbers already and is returned as it is, after one walk.
func plainNumbers(v any) (any, bool) {
	switch x := v.(type) {
	case float64:
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64)), true
	case json.Number:
		if plainDecimal(string(x)) {
			return x, false
		}
		if d, err := decimal(x); err == nil {
			return json.Number(d), true
		}
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			if n, changed := plainNumbers(e); changed {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = n
			}
		}
		if out != nil {
			return out, true
		}
	case []any:
		var out []any
		for i, e := range x {
			if n, changed := plainNumbers(e); changed {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = n
			}
		}
		if out != nil {
			return out, true
		}
	}
	return v, false
}
