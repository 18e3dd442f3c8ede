// Package templatedir loads the templates of POSTIE_TEMPLATES_DIR, a directory of template files
// kept in git, into the template catalog, and reloads them when they change, without a restart.
//
// # Files
//
//	order-shipped.tmpl          the template order-shipped
//	order-shipped.ko.tmpl       its Korean variant (the last dot-part, when a language tag, is a locale)
//	order-shipped.schema.json   the JSON Schema of its data (optional)
//
// A .tmpl file holds {{define "subject"}}, {{define "html"}} and {{define "text"}} blocks (each
// optional; a layout has no subject) and comments. Two top-level comments set the template's
// layout and description:
//
//	{{/* layout: newsletter-layout */}}
//	{{/* description: The weekly newsletter */}}
//
// A variant file holds only blocks: layout, description and schema are the template's. Other
// files, and files whose name starts with a dot (editor backups), are ignored.
//
// # Loading and reloading
//
// Load reads every file and stores, as a new version with origin "dir", each template whose
// content differs from its latest stored version; a template whose file was removed is deleted.
// At start (Load) any file that does not parse or compile is an error naming file:line:column,
// and postie does not start. Run then polls the files' sizes and modification times every
// Interval (1 s) and loads again when they change: a file that no longer compiles is logged at
// error level and reported by Errors (GET /v1/templates shows it as load_error), and its
// previous version keeps serving. Polling rather than inotify: it needs no dependency, works
// on network and container-mounted volumes where file events do not arrive, and sees the
// rename-into-place that editors and git checkouts do; a directory of templates is cheap to
// stat.
//
// A name that exists as an API template is not loaded from a file (reported by Errors, not an
// error at start), and API changes to a directory template are refused: a name has one origin.
package templatedir

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// Config configures a Loader.
type Config struct {
	Dir      string
	Catalog  *templates.Catalog
	Logger   *slog.Logger
	Interval time.Duration // how often Run looks for changes; default 1s
}

// Loader keeps the templates of one directory loaded. Errors is safe for concurrent use; Load
// and Run must not run concurrently.
type Loader struct {
	cfg Config
	log *slog.Logger

	stamps map[string]stamp          // file → size and time at the last load
	stored map[string]store.Template // name → content last stored or found stored

	mu     sync.Mutex
	errors map[string]templates.LoadError // by template name
}

type stamp struct {
	size int64
	mod  time.Time
}

// New returns a Loader of cfg.Dir.
func New(cfg Config) *Loader {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	return &Loader{cfg: cfg, log: cfg.Logger.With("component", "templatedir", "dir", cfg.Dir),
		stored: map[string]store.Template{}, errors: map[string]templates.LoadError{}}
}

// Errors returns the files not served as written, by file name.
func (l *Loader) Errors() []templates.LoadError {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Collect(maps.Values(l.errors))
	slices.SortFunc(out, func(a, b templates.LoadError) int { return strings.Compare(a.File, b.File) })
	return out
}

// Load loads the directory. It returns an error naming every file that does not parse or
// compile (file:line:column), or that cannot be read; the other templates are loaded.
func (l *Loader) Load(ctx context.Context) error {
	stamps, err := l.stat()
	if err != nil {
		return err
	}
	errs, err := l.load(ctx, stamps)
	if err != nil {
		return err
	}
	var broken []error
	for _, e := range errs {
		if !e.conflict {
			broken = append(broken, fmt.Errorf("%s", e.Message))
		}
	}
	return errors.Join(broken...)
}

// Run reloads the directory whenever its files change, until ctx ends.
func (l *Loader) Run(ctx context.Context) {
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stamps, err := l.stat()
		if err != nil {
			l.log.Error("cannot read the templates directory", "err", err)
			continue
		}
		if maps.Equal(stamps, l.stamps) {
			continue
		}
		if _, err := l.load(ctx, stamps); err != nil && ctx.Err() == nil {
			l.log.Error("reloading the templates directory failed; will retry on the next change", "err", err)
			l.stamps = nil // try again on the next tick
		}
	}
}

// stat returns the stamps of the files the directory's templates are made of.
func (l *Loader) stat() (map[string]stamp, error) {
	entries, err := os.ReadDir(l.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("POSTIE_TEMPLATES_DIR: %w", err)
	}
	out := map[string]stamp{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.IsDir() ||
			(!strings.HasSuffix(name, ".tmpl") && !strings.HasSuffix(name, ".schema.json")) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("POSTIE_TEMPLATES_DIR: %w", err)
		}
		out[name] = stamp{size: info.Size(), mod: info.ModTime()}
	}
	return out, nil
}

// loadError is a LoadError and whether it is a name conflict with an API template (which does
// not stop a start).
type loadError struct {
	templates.LoadError
	conflict bool
}

// dirTemplate is one template assembled from its files, with where each part came from.
type dirTemplate struct {
	tpl     store.Template
	sources map[string]sourceFile // "" or a locale → its file
	err     *loadError
}

type sourceFile struct {
	name   string
	parsed file
}

// load reads the files, stores what changed, deletes what was removed, and records the errors.
// It returns an error only when the store failed (the load is then incomplete).
func (l *Loader) load(ctx context.Context, stamps map[string]stamp) (map[string]*loadError, error) {
	tpls := l.read(stamps)
	errs := map[string]*loadError{}
	pending := map[string]*dirTemplate{}
	for name, dt := range tpls {
		if dt.err != nil {
			errs[name] = dt.err
			continue
		}
		prev, ok := l.stored[name]
		if !ok {
			cur, err := l.cfg.Catalog.Get(ctx, name, 0)
			switch {
			case err == nil && cur.Origin == store.TemplateOriginDir:
				prev, ok = cur, true
				l.stored[name] = cur
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return nil, err
			}
		}
		if ok && sameContent(prev, dt.tpl) {
			continue
		}
		pending[name] = dt
	}

	// Store layouts before the templates that use them, so that one pass stores a directory
	// that loads. Another pass is made while the last one stored something: a change to a
	// layout may be refused until a template using it is stored in its new form. The Batch
	// reads the live templates once, not once a template.
	var batch *templates.Batch
	if len(pending) > 0 {
		var err error
		if batch, err = l.cfg.Catalog.Batch(ctx); err != nil {
			return nil, err
		}
	}
	for progress := true; progress && len(pending) > 0; {
		progress = false
		for _, name := range storeOrder(pending) {
			dt := pending[name]
			saved, _, err := batch.Put(ctx, dt.tpl)
			if err != nil {
				le, ok := dt.problem(err)
				if !ok {
					return nil, err
				}
				errs[name] = le
				continue
			}
			l.log.Info("template loaded", "template", name, "version", saved.Version)
			l.stored[name] = saved
			delete(pending, name)
			delete(errs, name)
			progress = true
		}
	}

	// What is still pending failed: explain it with the other pending templates as they would
	// be (a layout of this directory that does not load either, or a cycle among them).
	if len(pending) > 0 {
		overlay := map[string]store.Template{}
		for name, dt := range pending {
			overlay[name] = dt.tpl
		}
		for name, dt := range pending {
			if _, err := l.cfg.Catalog.Check(ctx, dt.tpl, overlay); err != nil {
				if le, ok := dt.problem(err); ok {
					errs[name] = le
				}
			}
		}
	}

	// Templates whose files are gone.
	if err := l.deleteRemoved(ctx, tpls, errs); err != nil {
		return nil, err
	}

	l.stamps = stamps
	l.setErrors(errs)
	return errs, nil
}

// storeOrder returns the names of pending by name, except that a template comes after the
// layouts of its chain that are pending too. A cycle is cut where it is met (its templates
// fail to store anyway).
func storeOrder(pending map[string]*dirTemplate) []string {
	out := make([]string, 0, len(pending))
	seen := make(map[string]bool, len(pending))
	for _, name := range slices.Sorted(maps.Keys(pending)) {
		// Walk up the chain to the first layout not yet placed, then place the chain top down.
		var chain []string
		for n := name; n != "" && pending[n] != nil && !seen[n]; n = pending[n].tpl.Layout {
			seen[n] = true
			chain = append(chain, n)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			out = append(out, chain[i])
		}
	}
	return out
}

// deleteRemoved deletes the directory templates that have no file any more.
func (l *Loader) deleteRemoved(ctx context.Context, tpls map[string]*dirTemplate, errs map[string]*loadError) error {
	p := store.TemplateListParams{Origin: store.TemplateOriginDir, Limit: 1000}
	var gone []string
	for {
		page, next, err := l.cfg.Catalog.List(ctx, p)
		if err != nil {
			return err
		}
		for _, t := range page {
			if _, ok := tpls[t.Name]; !ok {
				gone = append(gone, t.Name)
			}
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	for _, name := range gone {
		err := l.cfg.Catalog.Delete(ctx, name, store.TemplateOriginDir, false)
		switch {
		case err == nil:
			l.log.Info("template deleted: its file was removed", "template", name)
			delete(l.stored, name)
		case errors.Is(err, store.ErrConflict):
			errs[name] = &loadError{LoadError: templates.LoadError{Name: name, File: name + ".tmpl",
				Message: name + ".tmpl: the file was removed but the template stays: " + err.Error()}}
		case errors.Is(err, store.ErrNotFound):
		default:
			return err
		}
	}
	return nil
}

// setErrors replaces the load errors, logging each new one at error level once.
func (l *Loader) setErrors(errs map[string]*loadError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := make(map[string]templates.LoadError, len(errs))
	for name, e := range errs {
		next[name] = e.LoadError
		if old, ok := l.errors[name]; !ok || old != e.LoadError {
			keeps := ""
			if _, ok := l.stored[name]; ok {
				keeps = "; the previous version keeps serving"
			}
			l.log.Error("template file not loaded"+keeps, "template", name, "err", e.Message)
		}
	}
	for name := range l.errors {
		if _, ok := next[name]; !ok {
			l.log.Info("template file loads again", "template", name)
		}
	}
	l.errors = next
}

// read parses every file into templates; a template whose files do not parse carries its error.
func (l *Loader) read(stamps map[string]stamp) map[string]*dirTemplate {
	tpls := map[string]*dirTemplate{}
	get := func(name string) *dirTemplate {
		if tpls[name] == nil {
			tpls[name] = &dirTemplate{tpl: store.Template{Name: name, Origin: store.TemplateOriginDir},
				sources: map[string]sourceFile{}}
		}
		return tpls[name]
	}
	fail := func(dt *dirTemplate, fileName, msg string) {
		if dt.err == nil {
			dt.err = &loadError{LoadError: templates.LoadError{Name: dt.tpl.Name, File: fileName, Message: fileName + ":" + msg}}
		}
	}
	files := slices.Sorted(maps.Keys(stamps))
	for _, fileName := range files {
		if base, ok := strings.CutSuffix(fileName, ".schema.json"); ok {
			dt := get(base)
			b, err := os.ReadFile(filepath.Join(l.cfg.Dir, fileName))
			switch {
			case err != nil:
				fail(dt, fileName, " "+err.Error())
			case !json.Valid(b):
				fail(dt, fileName, jsonError(b))
			default:
				dt.tpl.Schema = json.RawMessage(b)
			}
			continue
		}
		name, locale := splitName(strings.TrimSuffix(fileName, ".tmpl"))
		dt := get(name)
		if !templates.ValidName(name) {
			fail(dt, fileName, " not a template name: 1–100 lowercase letters, digits, '-', '_' and '.', starting with a letter or digit")
			continue
		}
		b, err := os.ReadFile(filepath.Join(l.cfg.Dir, fileName))
		if err != nil {
			fail(dt, fileName, " "+err.Error())
			continue
		}
		f, err := parseFile(string(b))
		if err != nil {
			fail(dt, fileName, err.Error())
			continue
		}
		dt.sources[locale] = sourceFile{name: fileName, parsed: f}
		if locale == "" {
			dt.tpl.Subject, dt.tpl.HTML, dt.tpl.Text = f.blocks["subject"].body, f.blocks["html"].body, f.blocks["text"].body
			dt.tpl.Layout, dt.tpl.Description = f.meta["layout"].value, f.meta["description"].value
			continue
		}
		if m, ok := f.meta["layout"]; ok {
			fail(dt, fileName, fmt.Sprintf("%d: set the layout in %s.tmpl: a variant shares it", m.line, name))
			continue
		}
		if dt.tpl.Locales == nil {
			dt.tpl.Locales = map[string]store.TemplateVariant{}
		}
		dt.tpl.Locales[locale] = store.TemplateVariant{Subject: f.blocks["subject"].body, HTML: f.blocks["html"].body, Text: f.blocks["text"].body}
	}
	for name, dt := range tpls {
		if _, ok := dt.sources[""]; !ok && dt.err == nil {
			var first string
			for _, s := range dt.sources {
				first = s.name
			}
			fail(dt, cmp.Or(first, name+".schema.json"), fmt.Sprintf(" there is no %s.tmpl", name))
		}
	}
	return tpls
}

// splitName splits a file name without .tmpl into the template name and the locale: the last
// dot-part is a locale when it is a language tag ("news.ko" → news, ko; "order.v2" stays whole).
func splitName(base string) (name, locale string) {
	i := strings.LastIndexByte(base, '.')
	if i > 0 && templates.ValidLocale(base[i+1:]) {
		return base[:i], base[i+1:]
	}
	return base, ""
}

// problem turns the catalog's refusal of a template into the load error of the file at fault,
// with the position in the file; ok is false for errors that are not the files' fault.
func (dt *dirTemplate) problem(err error) (*loadError, bool) {
	le := &loadError{LoadError: templates.LoadError{Name: dt.tpl.Name, File: dt.tpl.Name + ".tmpl"}}
	var ie *templates.InvalidError
	switch {
	case errors.As(err, &ie):
	case errors.Is(err, store.ErrConflict):
		le.conflict = true
		le.Message = le.File + ": " + err.Error()
		return le, true
	default:
		return nil, false
	}
	var msgs []string
	for i, pr := range ie.Problems {
		file, where, field := dt.locate(pr)
		if i == 0 {
			le.File = file
		}
		msg := pr.Text()
		if pr.Template == "" || pr.Template == dt.tpl.Name {
			msg = pr.Message // the file and position say where
		}
		msgs = append(msgs, file+where+": "+cmp.Or(field, "template")+": "+msg)
	}
	le.Message = strings.Join(msgs, "; ")
	return le, true
}

// locate returns the file a problem is in, its position there (":line:column", or "") and the
// field within the file ("locales.ko.html" is "html" of the .ko.tmpl file).
func (dt *dirTemplate) locate(pr templates.Problem) (file, where, field string) {
	field, locale := pr.Field, ""
	if rest, ok := strings.CutPrefix(field, "locales."); ok {
		for loc := range dt.sources {
			if loc != "" && strings.HasPrefix(rest, loc+".") {
				locale, field = loc, strings.TrimPrefix(rest, loc+".")
			}
		}
	}
	src := dt.sources[locale]
	switch {
	case strings.HasPrefix(field, "schema"):
		return dt.tpl.Name + ".schema.json", "", field
	case field == "layout":
		if m, ok := src.parsed.meta["layout"]; ok {
			return src.name, fmt.Sprintf(":%d", m.line), field
		}
		return src.name, "", field
	}
	b, ok := src.parsed.blocks[field]
	switch {
	case !ok:
		return src.name, "", field
	case pr.Line == 0 || (pr.Template != "" && pr.Template != dt.tpl.Name):
		return src.name, fmt.Sprintf(":%d", b.defineLine), field
	}
	line, col := b.fileLine(pr.Line, pr.Column)
	if col > 0 {
		return src.name, fmt.Sprintf(":%d:%d", line, col), field
	}
	return src.name, fmt.Sprintf(":%d", line), field
}

// sameContent reports whether two versions have the same content (origin included).
func sameContent(a, b store.Template) bool {
	return a.Subject == b.Subject && a.HTML == b.HTML && a.Text == b.Text && a.Layout == b.Layout &&
		a.Description == b.Description && a.Origin == b.Origin && jsonEqual(a.Schema, b.Schema) &&
		(len(a.Locales) == 0 && len(b.Locales) == 0 || reflect.DeepEqual(a.Locales, b.Locales))
}

func jsonEqual(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// jsonError describes why b is not JSON, with the line and column.
func jsonError(b []byte) string {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 {
		line, col := position(string(b), int(se.Offset)-1) // Offset is just past the fault
		return fmt.Sprintf("%d:%d: not JSON: %v", line, col, err)
	}
	return fmt.Sprintf(" not JSON: %v", err)
}
