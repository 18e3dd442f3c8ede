// Package templates is the catalog of stored templates: it validates a template before storing a
// new version, and renders messages from templates, keeping compiled templates in memory.
//
// # Validation
//
// Put compiles the template (and every locale variant) with its layout chain resolved from the
// store, and compiles every live template that uses it as a layout with the new version in place,
// so that a change that would break sending is refused (an *InvalidError naming the field, the
// line and column) instead of stored.
//
// # Caching
//
// Rendering a message needs the latest version of its template and a compiled form of it. Both
// are cached, so that accepting thousands of messages a second costs no database query per
// message:
//
//   - The latest version of each name (or its absence) is kept for LatestTTL (2 s). Put and
//     Delete through this Catalog replace the entry at once; a change made by another node is
//     seen within LatestTTL.
//   - Compiled templates are kept per (name, version, requested locale), at most MaxCompiled of
//     them, least recently used first out. A (name, version) never changes content (versions are
//     immutable and never reused), so an entry only goes stale through its layouts: each entry
//     records the layout versions it was compiled with and is compiled again when one of them is
//     no longer the latest. A layout change therefore reaches every template using it, within
//     LatestTTL on other nodes.
//
// Concurrent renders of one template share one compilation. A Catalog is safe for concurrent use.
package templates

import (
	"cmp"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/postie/postie/internal/render"
	"github.com/postie/postie/internal/store"
)

// Config configures a Catalog.
type Config struct {
	Store  store.Templates
	Logger *slog.Logger
	Now    func() time.Time
	// Dir is POSTIE_TEMPLATES_DIR when this process loads one ("" otherwise). While it is set,
	// API changes to the templates loaded from it are refused; without it the API may take over
	// a name a templates directory once loaded.
	Dir string
	// LatestTTL is how long the latest version of a name is used without asking the store:
	// the delay before a change made on another node is seen. Default 2s.
	LatestTTL time.Duration
	// MaxCompiled bounds the compiled templates kept in memory. Default 1024.
	MaxCompiled int
	// Limits bound each render (output size per part, time).
	Limits render.Limits
}

// Defaults of Config.
const (
	DefaultLatestTTL   = 2 * time.Second
	DefaultMaxCompiled = 1024
	// maxLatest bounds the latest-version cache; past it the cache starts over (it only holds
	// names that were asked for, which an API client could make up by the million).
	maxLatest = 10000
)

// Catalog validates, stores and renders templates. See the package documentation.
type Catalog struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	latest   map[string]latestEntry
	compiled map[compiledKey]*compiledEntry
	lru      list.List // of compiledKey, most recently used first
}

type latestEntry struct {
	tpl     store.Template // Version 0: there is no live template of that name
	fetched time.Time
}

type compiledKey struct {
	name    string
	version int
	locale  string // as requested, lowercased
}

type layoutRef struct {
	name    string
	version int // 0: the layout did not exist
}

type compiledEntry struct {
	ready   chan struct{} // closed once the fields below are set
	tpl     *render.Template
	version int
	variant string // the locale variant used, "" for the default
	layouts []layoutRef
	err     error // a template error (cached like a template); store errors are not cached
	elem    *list.Element
}

// New returns a Catalog.
func New(cfg Config) *Catalog {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LatestTTL <= 0 {
		cfg.LatestTTL = DefaultLatestTTL
	}
	if cfg.MaxCompiled <= 0 {
		cfg.MaxCompiled = DefaultMaxCompiled
	}
	return &Catalog{cfg: cfg, log: cfg.Logger.With("component", "templates"),
		latest: map[string]latestEntry{}, compiled: map[compiledKey]*compiledEntry{}}
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)
	localeRE = regexp.MustCompile(`^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8}){0,3}$`)
)

// ValidName reports whether name is a valid template name: 1–100 lowercase letters, digits,
// '-', '_' and '.', starting with a letter or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// ValidLocale reports whether tag looks like a BCP 47 language tag: a 2–3 letter language and
// up to three subtags ("ko", "pt-BR", "zh-Hant-TW").
func ValidLocale(tag string) bool { return localeRE.MatchString(tag) }

// Problem is one thing wrong with a template or with a message's data. Field is where, named
// after the fields of store.Template and RenderParams: "html", "locales.ko.subject", "layout",
// "schema/properties/order" for a template; "name", "version", "locale", "data/order/id" for a
// render; "" means the template as a whole (a render failure that is not the data's). Callers
// name them as their own requests do. Template, Line and Column locate the fault in a template's
// source when known (Template may be a layout of the template at fault).
type Problem struct {
	Field    string
	Template string
	Line     int
	Column   int
	Message  string
}

// Text is the message with its source location: "template base, line 3, column 7: …".
func (p Problem) Text() string {
	var where []string
	if p.Template != "" {
		where = append(where, "template "+p.Template)
	}
	if p.Line > 0 {
		where = append(where, fmt.Sprintf("line %d", p.Line))
	}
	if p.Column > 0 {
		where = append(where, fmt.Sprintf("column %d", p.Column))
	}
	if len(where) == 0 {
		return p.Message
	}
	return strings.Join(where, ", ") + ": " + p.Message
}

// InvalidError is the template's or the data's fault: the API answers 422 with one error per
// problem. Nothing was stored. The catalog may return one value to several callers (a template
// that does not compile is cached as such): do not modify it.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Field + ": " + p.Text()
		if p.Field == "" {
			msgs[i] = p.Text()
		}
	}
	return strings.Join(msgs, "; ")
}

func invalid(field, format string, args ...any) *InvalidError {
	return &InvalidError{Problems: []Problem{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// LoadError is a file of the templates directory that is not served as written: it does not
// compile (the previous version, if any, keeps serving), or its name belongs to an API template.
type LoadError struct {
	Name    string // the template the file is for
	File    string // the file, relative to the directory
	Message string // what is wrong, as "file:line:column: problem" (the position when known)
}

// ErrUnknown is wrapped by the errors of renders from a template that does not exist.
var ErrUnknown = errors.New("unknown template")

// ManagedError refuses an API change to a template loaded from the templates directory. It
// wraps store.ErrConflict.
type ManagedError struct {
	Name, Dir string
}

func (e *ManagedError) Error() string {
	return fmt.Sprintf("template %s is managed by POSTIE_TEMPLATES_DIR (%s): change its file instead", e.Name, e.Dir)
}

func (e *ManagedError) Unwrap() error { return store.ErrConflict }

// checkContent checks what Compile does not: names, locales, required parts.
func checkContent(tpl store.Template) *InvalidError {
	var probs []Problem
	add := func(field, format string, args ...any) {
		probs = append(probs, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if !ValidName(tpl.Name) {
		add("name", "a template name is 1–100 lowercase letters, digits, '-', '_' and '.', starting with a letter or digit")
	}
	if tpl.Layout != "" && !ValidName(tpl.Layout) {
		add("layout", "not a template name")
	}
	if hasDefault(tpl) || len(tpl.Locales) == 0 {
		if tpl.HTML == "" && tpl.Text == "" {
			add("html", "required: give html or text (or both), or only locales")
		}
	}
	for _, loc := range slices.Sorted(maps.Keys(tpl.Locales)) {
		v := tpl.Locales[loc]
		if !ValidLocale(loc) {
			add("locales."+loc, "not a language tag like ko or pt-BR")
			continue
		}
		if v.HTML == "" && v.Text == "" {
			add("locales."+loc+".html", "required: a variant has its own html or text (or both) and subject")
		}
	}
	if len(probs) > 0 {
		return &InvalidError{Problems: probs}
	}
	return nil
}

// hasDefault reports whether tpl has default content (it may have only locale variants).
func hasDefault(tpl store.Template) bool {
	return tpl.Subject != "" || tpl.HTML != "" || tpl.Text != ""
}

// variant picks the locale variant of tpl for locale: the exact tag (case-insensitively), then
// the tag without its last subtags ("pt-BR" → "pt"), then the default content. ok is false when
// none applies (the template has no default content and no variant for the locale).
func variant(tpl store.Template, locale string) (key string, ok bool) {
	for tag := locale; tag != ""; {
		for k := range tpl.Locales {
			if strings.EqualFold(k, tag) {
				return k, true
			}
		}
		i := strings.LastIndexByte(tag, '-')
		if i < 0 {
			break
		}
		tag = tag[:i]
	}
	return "", hasDefault(tpl)
}

// source is the render source of tpl's variant ("" for the default content).
func source(tpl store.Template, variant string) render.Source {
	src := render.Source{Name: tpl.Name, Subject: tpl.Subject, HTML: tpl.HTML, Text: tpl.Text,
		Layout: tpl.Layout, Schema: tpl.Schema}
	if v, ok := tpl.Locales[variant]; ok && variant != "" {
		src.Subject, src.HTML, src.Text = v.Subject, v.HTML, v.Text
	}
	return src
}

// layouts returns the render.Layouts of one compilation in locale: each layout's variant for the
// locale, or its default. lookup finds the latest version of a name (store.ErrNotFound when
// there is none); every layout asked for is appended to refs.
func layouts(ctx context.Context, locale string, lookup func(context.Context, string) (store.Template, error), refs *[]layoutRef) render.Layouts {
	return func(name string) (render.Source, error) {
		tpl, err := lookup(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			*refs = append(*refs, layoutRef{name: name})
			return render.Source{}, fmt.Errorf("no template named %q: %w", name, render.ErrNotFound)
		}
		if err != nil {
			return render.Source{}, err
		}
		*refs = append(*refs, layoutRef{name: name, version: tpl.Version})
		v, _ := variant(tpl, locale)
		return source(tpl, v), nil
	}
}

// problems converts a render failure into an *InvalidError, with fields under prefix (""
// or "locales.ko."); other errors (the store's, a cancelled context) are returned as they are.
func problems(err error, prefix string) error {
	errs := render.List(err)
	if len(errs) == 0 {
		return err
	}
	for _, e := range errs {
		if errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, render.ErrTimeout) {
			return err
		}
	}
	out := &InvalidError{}
	for _, e := range errs {
		out.Problems = append(out.Problems, problem(e, prefix))
	}
	return out
}

// problem places one render error: data and schema errors at their JSON pointer, template errors
// at their part, with the source location.
func problem(e *render.Error, prefix string) Problem {
	pr := Problem{Template: e.Template, Line: e.Line, Column: e.Column, Message: e.Message}
	switch {
	case e.Field == "data":
		// Path is the pointer in the request: "/data/order/id" → "data/order/id".
		pr.Field = strings.TrimPrefix(cmp.Or(e.Path, "/data"), "/")
	case e.Field == "schema":
		pr.Field = prefix + "schema" + e.Path
	case strings.HasPrefix(e.Path, "/data"):
		// A render failure on a plain field chain: the data is at fault.
		pr.Field, pr.Message = strings.TrimPrefix(e.Path, "/"), e.Field+": "+e.Message
	default:
		pr.Field = prefix + e.Field
	}
	return pr
}

// Put validates tpl (content, compilation of every locale with its layout chain, and of every
// template using it as a layout) and stores it as the next version of its name, with tpl.Origin.
// It returns the stored version and the compiler's notes (CSS it could not inline, …); an
// *InvalidError when the template is at fault, a *ManagedError when an API change targets a
// directory-managed template, or the store's error.
func (c *Catalog) Put(ctx context.Context, tpl store.Template) (store.Template, []string, error) {
	return c.put(ctx, tpl, nil)
}

// A Batch stores several templates against one read of the live templates, which Put makes for
// every template to find the ones using it as a layout: loading a directory of n templates
// with Put would read all of them n times. The read is kept up to date with the Batch's own
// puts; changes made meanwhile by others (an API PUT on another node) are not seen, so a Batch
// is for one load, not to be kept. A Batch is not safe for concurrent use.
type Batch struct {
	c    *Catalog
	live map[string]store.Template
}

// Batch returns a Batch holding the live templates as they are now.
func (c *Catalog) Batch(ctx context.Context) (*Batch, error) {
	live, err := c.liveTemplates(ctx)
	if err != nil {
		return nil, err
	}
	return &Batch{c: c, live: live}, nil
}

// Put is Catalog.Put with the layouts and the users of tpl found in the Batch's templates (a
// layout stored earlier in the Batch included); a layout the Batch does not hold is read from
// the store.
func (b *Batch) Put(ctx context.Context, tpl store.Template) (store.Template, []string, error) {
	saved, notes, err := b.c.put(ctx, tpl, b.live)
	if err == nil {
		b.live[saved.Name] = saved
	}
	return saved, notes, err
}

// put is Put; live holds the live templates by name, or nil to read them from the store.
func (c *Catalog) put(ctx context.Context, tpl store.Template, live map[string]store.Template) (store.Template, []string, error) {
	notes, err := c.check(ctx, tpl, nil, live)
	if err != nil {
		return store.Template{}, nil, err
	}
	anyOrigin := tpl.Origin == store.TemplateOriginAPI && c.cfg.Dir == ""
	saved, err := c.cfg.Store.TemplatePut(ctx, store.TemplatePutParams{Template: tpl, Now: c.cfg.Now().UTC(), AnyOrigin: anyOrigin})
	if err != nil {
		return store.Template{}, nil, c.originError(tpl.Name, tpl.Origin, err)
	}
	c.setLatest(saved.Name, saved, c.cfg.Now())
	return saved, notes, nil
}

// originError explains an ErrConflict of a put or delete by the origin the name belongs to.
func (c *Catalog) originError(name, origin string, err error) error {
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "managed by origin") {
		return err
	}
	if origin == store.TemplateOriginAPI {
		return &ManagedError{Name: name, Dir: c.cfg.Dir}
	}
	return fmt.Errorf("template %s exists as an API template (PUT /v1/templates/%s); the file is not loaded: delete the API template or rename the file: %w",
		name, name, store.ErrConflict)
}

// Check validates tpl as Put does, without storing it, and returns the compiler's notes. The
// templates of others stand in for the stored ones of their names (a set of templates about to
// be stored together).
func (c *Catalog) Check(ctx context.Context, tpl store.Template, others map[string]store.Template) ([]string, error) {
	return c.check(ctx, tpl, others, nil)
}

// check is Check; live holds the live templates by name, or nil to read them from the store.
func (c *Catalog) check(ctx context.Context, tpl store.Template, others, live map[string]store.Template) ([]string, error) {
	if err := checkContent(tpl); err != nil {
		return nil, err
	}
	// Layouts come from the live templates when they were read (a Batch's, kept up to date with
	// its own puts), else from the store itself (not the cache): a PUT must see the latest
	// layout. tpl stands in for its own name, so that a chain coming back to it is a cycle.
	lookup := func(ctx context.Context, name string) (store.Template, error) {
		if name == tpl.Name {
			return tpl, nil
		}
		if o, ok := others[name]; ok {
			return o, nil
		}
		if l, ok := live[name]; ok {
			return l, nil
		}
		return c.cfg.Store.TemplateGet(ctx, name, 0)
	}
	notes, err := compileAll(ctx, tpl, lookup, "")
	if err != nil {
		return nil, err
	}
	if live == nil {
		if live, err = c.liveTemplates(ctx); err != nil {
			return nil, err
		}
	}
	return notes, checkUsers(ctx, tpl, live, lookup)
}

// compileAll compiles tpl's default content and every variant, and returns the compiler's notes;
// problems are prefixed with prefix.
func compileAll(ctx context.Context, tpl store.Template, lookup func(context.Context, string) (store.Template, error), prefix string) ([]string, error) {
	var variants []string
	if hasDefault(tpl) {
		variants = append(variants, "")
	}
	variants = append(variants, slices.Sorted(maps.Keys(tpl.Locales))...)
	all := &InvalidError{}
	var notes []string
	for _, v := range variants {
		var refs []layoutRef
		compiled, err := render.Compile(source(tpl, v), layouts(ctx, v, lookup, &refs))
		if err == nil {
			for _, n := range compiled.Notes() {
				if !slices.Contains(notes, n) {
					notes = append(notes, n)
				}
			}
			continue
		}
		p := prefix
		if v != "" {
			p += "locales." + v + "."
		}
		var ie *InvalidError
		if err := problems(err, p); !errors.As(err, &ie) {
			return nil, err
		}
		// The schema is shared by every locale: report its problems once.
		for _, pr := range ie.Problems {
			if strings.HasPrefix(pr.Field, p+"schema") {
				pr.Field = prefix + strings.TrimPrefix(pr.Field, p)
			}
			if !slices.Contains(all.Problems, pr) {
				all.Problems = append(all.Problems, pr)
			}
		}
	}
	if len(all.Problems) > 0 {
		return nil, all
	}
	return notes, nil
}

// liveTemplates reads every live template (its latest version) from the store, by name.
func (c *Catalog) liveTemplates(ctx context.Context) (map[string]store.Template, error) {
	all := map[string]store.Template{}
	p := store.TemplateListParams{Limit: 1000}
	for {
		page, next, err := c.cfg.Store.TemplateList(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, t := range page {
			all[t.Name] = t
		}
		if next == "" {
			return all, nil
		}
		p.Cursor = next
	}
}

// checkUsers compiles every template of live whose layout chain goes through tpl, with tpl in
// place of its stored version. It does not change live.
func checkUsers(ctx context.Context, tpl store.Template, live map[string]store.Template, lookup func(context.Context, string) (store.Template, error)) error {
	layoutOf := func(name string) string {
		if name == tpl.Name {
			return tpl.Layout
		}
		return live[name].Layout
	}
	var users []string
	for name, t := range live {
		if name == tpl.Name {
			continue
		}
		// Walk the chain (bounded: a cycle among stored templates cannot be, but be safe).
		for l, n := t.Layout, 0; l != "" && n <= len(live); l, n = layoutOf(l), n+1 {
			if l == tpl.Name {
				users = append(users, name)
				break
			}
		}
	}
	slices.Sort(users)
	out := &InvalidError{}
	for _, name := range users {
		_, err := compileAll(ctx, live[name], lookup, "")
		var ie *InvalidError
		if !errors.As(err, &ie) {
			if err != nil {
				return err
			}
			continue
		}
		for _, pr := range ie.Problems {
			out.Problems = append(out.Problems, Problem{Field: "",
				Message: fmt.Sprintf("template %s uses this template as its layout and would no longer compile: %s: %s", name, pr.Field, pr.Text())})
		}
	}
	if len(out.Problems) > 0 {
		return out
	}
	return nil
}

// Delete deletes the template name on behalf of origin (see store.TemplateDeleteParams for
// force and the conflicts). An API delete of a directory-managed template is a *ManagedError.
func (c *Catalog) Delete(ctx context.Context, name, origin string, force bool) error {
	anyOrigin := origin == store.TemplateOriginAPI && c.cfg.Dir == ""
	err := c.cfg.Store.TemplateDelete(ctx, store.TemplateDeleteParams{Name: name, Origin: origin,
		AnyOrigin: anyOrigin, Force: force, Now: c.cfg.Now().UTC()})
	if err != nil {
		return c.originError(name, origin, err)
	}
	c.setLatest(name, store.Template{}, c.cfg.Now())
	return nil
}

// Get returns a version of a template (0: the latest), straight from the store.
func (c *Catalog) Get(ctx context.Context, name string, version int) (store.Template, error) {
	return c.cfg.Store.TemplateGet(ctx, name, version)
}

// List returns a page of the live templates, straight from the store.
func (c *Catalog) List(ctx context.Context, p store.TemplateListParams) ([]store.Template, string, error) {
	return c.cfg.Store.TemplateList(ctx, p)
}

// setLatest records tpl as the latest version of name, as known at asOf (when the read that
// found it began). An entry recorded after asOf wins: a slow read must not undo a Put or Delete
// made meanwhile.
func (c *Catalog) setLatest(name string, tpl store.Template, asOf time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.latest[name]; ok && e.fetched.After(asOf) {
		return
	}
	if len(c.latest) >= maxLatest {
		clear(c.latest)
	}
	c.latest[name] = latestEntry{tpl: tpl, fetched: asOf}
}

// latestTemplate returns the latest version of name from the cache, or from the store when the
// cached one is older than LatestTTL; store.ErrNotFound when there is no live template.
func (c *Catalog) latestTemplate(ctx context.Context, name string) (store.Template, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	e, ok := c.latest[name]
	c.mu.Unlock()
	if !ok || now.Sub(e.fetched) >= c.cfg.LatestTTL || now.Before(e.fetched) {
		tpl, err := c.cfg.Store.TemplateGet(ctx, name, 0)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Template{}, err
		}
		c.setLatest(name, tpl, now) // the zero Template when not found
		e.tpl = tpl
	}
	if e.tpl.Version == 0 {
		return store.Template{}, fmt.Errorf("template %s: %w", name, store.ErrNotFound)
	}
	return e.tpl, nil
}

// RenderParams names what to render.
type RenderParams struct {
	Name    string
	Version int    // 0: the latest
	Locale  string // "" for the default content
	Data    json.RawMessage
	// MessageID and Stream are shown to the template as .message.
	MessageID, Stream string
	// Links are what unsubscribe_url and preferences_url return (their placeholders when empty).
	Links render.Links
	// Contact is .contact, nil when the recipient is not a known contact.
	Contact map[string]any
	// Campaign is .campaign, nil when the message is not a campaign's.
	Campaign map[string]any
	// Event is .event and Events .events: a trigger's message's event and digest.
	Event  map[string]any
	Events []any
}

// Rendered is a rendered message.
type Rendered struct {
	render.Output
	Version int    // the template version used
	Locale  string // the locale variant used, "" for the default content
}

// Render renders a message from the template: latest (or pinned) version, locale variant, data
// validated against the schema. Failures that are the caller's (unknown template, version or
// locale, data, a render error) are an *InvalidError; an unknown template also wraps ErrUnknown.
func (c *Catalog) Render(ctx context.Context, p RenderParams) (Rendered, error) {
	ce, err := c.compiledFor(ctx, p.Name, p.Version, p.Locale)
	if err != nil {
		return Rendered{}, err
	}
	data, err := ce.tpl.DecodeData(p.Data)
	if err != nil {
		return Rendered{}, problems(err, "")
	}
	out, err := ce.tpl.Render(ctx, render.Context{Data: data, Links: p.Links, Contact: p.Contact, Campaign: p.Campaign,
		Event: p.Event, Events: p.Events, Message: render.MessageInfo{ID: p.MessageID, Stream: p.Stream}}, c.cfg.Limits)
	if err != nil {
		err = problems(err, "")
		var ie *InvalidError
		if errors.As(err, &ie) {
			// The parts are not fields of a render request: a failure that is not the data's
			// is the template's as a whole.
			for i, pr := range ie.Problems {
				if pr.Field != "data" && !strings.HasPrefix(pr.Field, "data/") {
					ie.Problems[i] = Problem{Message: strings.TrimPrefix(pr.Field+": "+pr.Text(), ": ")}
				}
			}
		}
		return Rendered{}, err
	}
	return Rendered{Output: out, Version: ce.version, Locale: ce.variant}, nil
}

// CheckData validates data against the schema of a version of the template name (0: the
// latest) without rendering, and returns the version checked: what a campaign checks when it
// is saved and when a run starts, before any recipient is known. Failures are Render's.
func (c *Catalog) CheckData(ctx context.Context, name string, version int, data json.RawMessage) (int, error) {
	ce, err := c.compiledFor(ctx, name, version, "")
	var ie *InvalidError
	if errors.As(err, &ie) && len(ie.Problems) == 1 && ie.Problems[0].Field == "locale" {
		// No default content: every variant shares the schema, so check with the first one.
		tpl, gerr := c.Get(ctx, name, version)
		if gerr != nil || len(tpl.Locales) == 0 {
			return 0, err
		}
		ce, err = c.compiledFor(ctx, name, version, slices.Sorted(maps.Keys(tpl.Locales))[0])
	}
	if err != nil {
		return 0, err
	}
	if err := ce.tpl.Validate(data); err != nil {
		return 0, problems(err, "")
	}
	return ce.version, nil
}

// unknownError is the *InvalidError of a render from a template that does not exist.
type unknownError struct{ *InvalidError }

func (e unknownError) Unwrap() []error { return []error{e.InvalidError, ErrUnknown} }

// compiledFor returns the compiled template for (name, version, locale), compiling it when the
// cache has none or its layouts changed.
func (c *Catalog) compiledFor(ctx context.Context, name string, version int, locale string) (*compiledEntry, error) {
	latest, err := c.latestTemplate(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownError{invalid("name", "unknown template %q", name)}
	}
	if err != nil {
		return nil, err
	}
	switch {
	case version == 0:
		version = latest.Version
	case version < 0:
		return nil, invalid("version", "a version is 1 or more")
	case version > latest.Version:
		return nil, invalid("version", "template %s has no version %d (the latest is %d)", name, version, latest.Version)
	}
	if locale != "" && !ValidLocale(locale) {
		return nil, invalid("locale", "not a language tag like ko or pt-BR")
	}
	key := compiledKey{name: name, version: version, locale: strings.ToLower(locale)}

	for {
		c.mu.Lock()
		e, ok := c.compiled[key]
		if ok {
			c.lru.MoveToFront(e.elem)
			c.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if e.tpl == nil && e.err == nil {
				continue // its compilation failed on a store error and was dropped: try again
			}
			if c.current(ctx, e.layouts) {
				if e.err != nil {
					return nil, e.err
				}
				return e, nil
			}
			c.drop(key, e)
			continue
		}
		e = &compiledEntry{ready: make(chan struct{})}
		e.elem = c.lru.PushFront(key)
		c.compiled[key] = e
		for c.lru.Len() > c.cfg.MaxCompiled {
			oldest := c.lru.Back()
			k := oldest.Value.(compiledKey)
			c.lru.Remove(oldest)
			delete(c.compiled, k)
		}
		c.mu.Unlock()

		err := c.compile(ctx, e, latest, key)
		close(e.ready)
		if err != nil {
			c.drop(key, e)
			return nil, err
		}
		if e.err != nil {
			return nil, e.err
		}
		return e, nil
	}
}

// compile fills e: a template error goes to e.err (cached), a store error is returned.
func (c *Catalog) compile(ctx context.Context, e *compiledEntry, latest store.Template, key compiledKey) error {
	tpl := latest
	if key.version != latest.Version {
		var err error
		if tpl, err = c.cfg.Store.TemplateGet(ctx, key.name, key.version); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				e.err = invalid("version", "template %s has no version %d", key.name, key.version)
				return nil
			}
			return err
		}
	}
	v, ok := variant(tpl, key.locale)
	if !ok {
		e.err = invalid("locale", "template %s has no variant for %q and no default content; its locales: %s",
			tpl.Name, key.locale, strings.Join(slices.Sorted(maps.Keys(tpl.Locales)), ", "))
		return nil
	}
	e.variant = v
	compiled, err := render.Compile(source(tpl, v), layouts(ctx, v, c.latestTemplate, &e.layouts))
	if err != nil {
		perr := problems(err, "")
		var ie *InvalidError
		if !errors.As(perr, &ie) {
			return perr
		}
		// A stored template that does not compile (its layout was force-deleted, or changed on
		// another node in a way that breaks it): the template as a whole is at fault.
		for i := range ie.Problems {
			ie.Problems[i] = Problem{Field: "name", Message: fmt.Sprintf("template %s version %d does not compile: %s: %s",
				tpl.Name, tpl.Version, cmp.Or(ie.Problems[i].Field, "template"), ie.Problems[i].Text())}
		}
		e.err = ie
		c.log.Error("a stored template does not compile", "template", tpl.Name, "version", tpl.Version, "err", err)
		return nil
	}
	e.tpl, e.version = compiled, tpl.Version
	return nil
}

// current reports whether every layout an entry was compiled with is still the latest version of
// its name (or still absent). A store error counts as current: the entry keeps serving.
func (c *Catalog) current(ctx context.Context, refs []layoutRef) bool {
	for _, r := range refs {
		tpl, err := c.latestTemplate(ctx, r.name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return true
		}
		if tpl.Version != r.version {
			return false
		}
	}
	return true
}

// drop removes e from the cache unless another entry replaced it already.
func (c *Catalog) drop(key compiledKey, e *compiledEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.compiled[key] == e {
		c.lru.Remove(e.elem)
		delete(c.compiled, key)
	}
}
