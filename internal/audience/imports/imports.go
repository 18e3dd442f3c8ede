// Package imports runs CSV imports of contacts: it spools an upload to disk while checking it,
// stores the import as a job (store.Imports), and applies its rows in chunks through
// Audience.ContactsUpsert in a background worker that saves its progress after every chunk.
//
// # The life of an import
//
// Spool copies the upload to DIR/imp_….csv.part with constant memory, checking it as it goes
// (UTF-8, quoting, record size, the row limit), so an upload with a broken encoding or too many
// rows is refused before anything is stored. Start checks the options against the header,
// renames the file to imp_….csv (fsynced) and creates the import, queued and leased to this
// node's worker: the spool is on this node's disk, so this node runs it. The worker claims it
// (ImportClaim), reads the spool from its saved offset, turns rows into upserts (bad rows are
// counted and the first ones kept, with their row number and reason), applies each chunk in
// one ContactsUpsert and then saves the offset and counts (ImportProgress). ContactsUpsert is
// idempotent, so a chunk applied before a crash and applied again after it changes nothing
// more (its rows may then count as skipped rather than created).
//
// # Restarts and other nodes
//
// A worker keeps the leases of all its node's imports alive while it runs (ImportRenewLeases).
// A node that restarts takes its previous run's leases back at start (ImportReleaseLeases by
// node id) and resumes from the saved offsets, its spool files being still on its disk. When a
// node dies for good, its leases end and another node's worker claims its imports; not having
// the spool file, it finishes them failed, with their counts and the reason, so that no import
// is left running or half-applied without saying so.
package imports

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/bulkgc"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// bulkGCPercent is how often the collector runs while an upload is checked or an import runs:
// every CSV record read is garbage at once (see package bulkgc).
const bulkGCPercent = 200

// Kind classes a Problem for the API: which 4xx it is.
type Kind int

// Kinds of problems.
const (
	KindInvalid   Kind = iota // the request is well-formed but cannot be done as asked (422)
	KindMalformed             // the file is not CSV in UTF-8 (400)
	KindTooLarge              // more rows than the limit (413)
)

// Problem is a bad request: Field names the option (mode, lists[1], mapping.Plan) or "file".
// Nothing was stored.
type Problem struct {
	Kind    Kind
	Field   string
	Message string
}

func (p *Problem) Error() string { return p.Field + ": " + p.Message }

func problem(kind Kind, field, format string, args ...any) *Problem {
	return &Problem{Kind: kind, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Store is what imports use of the store.
type Store interface {
	store.Imports
	ContactsUpsert(ctx context.Context, p store.ContactsUpsertParams) ([]store.ContactUpsertResult, error)
	ListGet(ctx context.Context, id string) (store.List, error)
	AttributeList(ctx context.Context) ([]store.Attribute, error)
}

// Defaults of Config.
const (
	DefaultMaxRows = 5_000_000
	DefaultChunk   = 1000
	DefaultLease   = time.Minute
)

// Config configures an Importer.
type Config struct {
	Store Store
	// Dir holds the spool files; created (0700) when missing.
	Dir string
	// Node is this node's id (recorded on the imports it receives); Owner this worker's lease
	// owner, unique per process (node/pid/random).
	Node, Owner string
	// MaxRows is the most data rows an upload may have (DefaultMaxRows when 0).
	MaxRows int
	// Chunk is how many rows are applied (and then recorded) at a time (DefaultChunk when 0).
	Chunk int
	// Lease is how long an import stays with a worker that stops renewing it (DefaultLease when 0).
	Lease time.Duration
	// AttributeTypes returns the declared attribute types (name → string, number, bool or
	// time); an attribute without one is kept as a string. Nil reads Store.AttributeList.
	AttributeTypes func(ctx context.Context) (map[string]string, error)
	Now            func() time.Time
	Logger         *slog.Logger
	// Errors takes the panics recovered while running an import; nil logs them.
	Errors errtrack.Reporter
}

// Importer spools uploads, creates imports and runs them.
type Importer struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}
}

// New returns an Importer; it creates Dir.
func New(cfg Config) (*Importer, error) {
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = DefaultMaxRows
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = DefaultChunk
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Errors = errtrack.OrLog(cfg.Errors, cfg.Logger)
	if cfg.AttributeTypes == nil {
		st := cfg.Store
		cfg.AttributeTypes = func(ctx context.Context) (map[string]string, error) {
			attrs, err := st.AttributeList(ctx)
			types := make(map[string]string, len(attrs))
			for _, a := range attrs {
				types[a.Name] = a.Type
			}
			return types, err
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("imports: creating the spool directory: %w", err)
	}
	return &Importer{cfg: cfg, log: cfg.Logger.With("component", "imports"), wake: make(chan struct{}, 1)}, nil
}

// MaxRows is the configured row limit.
func (im *Importer) MaxRows() int { return im.cfg.MaxRows }

// Options are an import's options.
type Options struct {
	Mode     string            // store.ImportUpsert (default) or store.ImportCreateOnly
	Lists    []string          // lists every row is subscribed to
	Mapping  map[string]string // column → field, attributes.NAME or "" (ignored)
	Filename string            // the uploaded file's name, if any
}

// CheckOptions checks o on its own (mode, mapping targets, lists that exist) and fills in the
// default mode; problems are *Problem, other errors the store's.
func (im *Importer) CheckOptions(ctx context.Context, o *Options) error {
	switch o.Mode {
	case "":
		o.Mode = store.ImportUpsert
	case store.ImportUpsert, store.ImportCreateOnly:
	default:
		return problem(KindInvalid, "mode", "%q is not a mode: upsert or create_only", o.Mode)
	}
	if err := CheckMapping(o.Mapping); err != nil {
		return err
	}
	var lists []string
	for i, l := range o.Lists {
		if slices.Contains(lists, l) {
			continue
		}
		if _, err := im.cfg.Store.ListGet(ctx, l); errors.Is(err, store.ErrNotFound) {
			return problem(KindInvalid, fmt.Sprintf("lists[%d]", i), "no list %q", l)
		} else if err != nil {
			return err
		}
		lists = append(lists, l)
	}
	o.Lists = lists
	return nil
}

// Upload is an upload spooled to disk, not yet an import.
type Upload struct {
	Spooled
	Filename string // the uploaded file's name, when the upload had one
	id       string
	path     string
}

// Discard removes an upload that will not become an import; after a Start that succeeded it
// does nothing.
func (u *Upload) Discard() {
	if u != nil && u.path != "" {
		_ = os.Remove(u.path)
	}
}

// Spool copies an upload to a spool file, checking it (see spoolCSV). A *Problem says what is
// wrong with it; the file is removed on any error.
func (im *Importer) Spool(ctx context.Context, r io.Reader) (*Upload, error) {
	u := &Upload{id: id.New(id.Import)}
	u.path = im.spoolPath(u.id) + ".part"
	defer bulkgc.Lower(bulkGCPercent)()
	f, err := os.OpenFile(u.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("imports: %w", err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	u.Spooled, err = spoolCSV(ctxReader{ctx, r}, bw, im.cfg.MaxRows)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync() // durable before acknowledged
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		u.Discard()
		return nil, err
	}
	return u, nil
}

// ctxReader stops reading an upload once its request is over.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Start makes a spooled upload an import: it checks o against the header, stores the import
// (queued, leased to this node's worker) and wakes the worker. On any error the upload is
// discarded.
func (im *Importer) Start(ctx context.Context, u *Upload, o Options) (store.Import, error) {
	imp, err := im.start(ctx, u, o)
	if err != nil {
		u.Discard()
		return imp, err
	}
	u.path = "" // the import's now
	return imp, nil
}

func (im *Importer) start(ctx context.Context, u *Upload, o Options) (store.Import, error) {
	if err := im.CheckOptions(ctx, &o); err != nil {
		return store.Import{}, err
	}
	applied, err := ResolveMapping(u.Header, o.Mapping)
	if err != nil {
		return store.Import{}, err
	}
	path := im.spoolPath(u.id)
	if err := os.Rename(u.path, path); err != nil {
		return store.Import{}, fmt.Errorf("imports: %w", err)
	}
	u.path = path
	if err := syncDir(im.cfg.Dir); err != nil {
		return store.Import{}, fmt.Errorf("imports: %w", err)
	}
	now := im.cfg.Now().UTC()
	imp, err := im.cfg.Store.ImportCreate(ctx, store.Import{ID: u.id, Mode: o.Mode, Lists: o.Lists, Mapping: applied,
		Filename: o.Filename, Node: im.cfg.Node, TotalRows: u.Rows, LeaseOwner: im.cfg.Owner,
		LeaseUntil: now.Add(im.cfg.Lease), CreatedAt: now})
	if err != nil {
		return store.Import{}, err
	}
	select {
	case im.wake <- struct{}{}:
	default:
	}
	return imp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (im *Importer) spoolPath(importID string) string {
	return filepath.Join(im.cfg.Dir, importID+".csv")
}

// Run claims and runs imports until ctx ends, one at a time, and keeps the leases of this
// node's imports alive meanwhile. An import interrupted by the end of ctx keeps its lease and
// saved progress: the next run of this node resumes it.
func (im *Importer) Run(ctx context.Context) {
	im.sweep(ctx)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		_ = errtrack.Supervise(ctx, im.cfg.Errors, "import lease renewal", func(ctx context.Context) error { im.renew(ctx); return nil })
	}()
	defer func() { <-renewDone }()
	poll := time.NewTicker(im.cfg.Lease / 2)
	defer poll.Stop()
	for ctx.Err() == nil {
		var ran bool
		var err error
		if errtrack.Guard(ctx, im.cfg.Errors, "import", func() { ran, err = im.RunOnce(ctx) }) {
			// The import keeps its lease and progress; it is tried again after the pause.
			ran, err = true, errors.New("internal error while running an import (reported)")
		}
		if err != nil && ctx.Err() == nil {
			im.log.Error("running an import failed; retrying", "err", err)
		}
		if ran && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-im.wake:
		case <-poll.C:
		}
	}
}

// renew extends the leases of this worker's imports, queued ones included, every third of
// the lease.
func (im *Importer) renew(ctx context.Context) {
	t := time.NewTicker(im.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := im.cfg.Now().UTC()
		if _, err := im.cfg.Store.ImportRenewLeases(ctx, store.ImportRenewParams{Owner: im.cfg.Owner, Now: now,
			Until: now.Add(im.cfg.Lease)}); err != nil && ctx.Err() == nil {
			im.log.Warn("renewing import leases failed", "err", err)
		}
	}
}

// sweep removes spool files no import needs any more: those of finished or unknown imports,
// and uploads cut short (.part) older than a lease.
func (im *Importer) sweep(ctx context.Context) {
	entries, err := os.ReadDir(im.cfg.Dir)
	if err != nil {
		im.log.Warn("reading the spool directory failed", "dir", im.cfg.Dir, "err", err)
		return
	}
	old := im.cfg.Now().Add(-im.cfg.Lease)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.ModTime().After(old) {
			continue
		}
		name := e.Name()
		if impID, ok := strings.CutSuffix(name, ".csv"); ok {
			imp, err := im.cfg.Store.ImportGet(ctx, impID)
			if err == nil && (imp.Status == store.ImportQueued || imp.Status == store.ImportRunning) ||
				err != nil && !errors.Is(err, store.ErrNotFound) {
				continue
			}
		} else if !strings.HasSuffix(name, ".csv.part") {
			continue
		}
		if err := os.Remove(filepath.Join(im.cfg.Dir, name)); err == nil {
			im.log.Info("removed a spool file no import needs", "file", name)
		}
	}
}

// RunOnce claims one import and runs it to its end (or until ctx ends or the store fails); ran
// is false when there was none to claim.
func (im *Importer) RunOnce(ctx context.Context) (ran bool, err error) {
	now := im.cfg.Now().UTC()
	imp, ok, err := im.cfg.Store.ImportClaim(ctx, store.ImportClaimParams{Owner: im.cfg.Owner, Now: now,
		LeaseUntil: now.Add(im.cfg.Lease)})
	if err != nil || !ok {
		return false, err
	}
	return true, im.run(ctx, imp)
}

// job is one import being run.
type job struct {
	im     *Importer
	imp    store.Import
	counts store.ImportCounts
	errs   []store.ImportRowError
}

func (j *job) fail(row int, field, reason string) {
	j.counts.Failed++
	if len(j.errs) < store.ImportMaxErrors {
		j.errs = append(j.errs, store.ImportRowError{Row: row, Field: field, Reason: reason})
	}
}

func (im *Importer) run(ctx context.Context, imp store.Import) error {
	defer bulkgc.Lower(bulkGCPercent)()
	j := &job{im: im, imp: imp, counts: imp.Counts, errs: imp.Errors}
	f, err := os.Open(im.spoolPath(imp.ID))
	if errors.Is(err, os.ErrNotExist) {
		reason := "the uploaded file is gone from this node's disk; upload it again"
		if imp.Node != im.cfg.Node {
			reason = fmt.Sprintf("the uploaded file is on the disk of node %s, which stopped before the import ended; "+
				"upload it again (rows already applied stay applied)", imp.Node)
		}
		im.log.Warn("import cannot go on without its file", "import", imp.ID, "node", imp.Node)
		return j.finish(ctx, store.ImportFailed, reason, imp.Offset, imp.Row)
	}
	if err != nil {
		return fmt.Errorf("imports: %w", err)
	}
	defer f.Close()
	err = j.read(ctx, f)
	var pe *csv.ParseError
	if errors.As(err, &pe) || errors.Is(err, errRecordTooLong) {
		// The file was checked when spooled: it changed on disk since.
		return j.finish(ctx, store.ImportFailed, "the uploaded file cannot be read any more: "+err.Error(), j.imp.Offset, j.imp.Row)
	}
	return err
}

// chunk is a run of rows read from the spool, ready to apply.
type chunk struct {
	items  []store.ContactUpsert
	rows   []int                  // the row number of each item
	bad    []store.ImportRowError // its bad rows, in order
	read   int                    // rows read, bad ones included
	offset int64                  // the spool offset after it
	row    int                    // the row number of its last row
	last   bool                   // the end of the file
}

// read applies the rows of the spool f from the saved offset on. One goroutine reads and
// checks the next chunk while this one applies the previous (chunks) and records progress.
func (j *job) read(ctx context.Context, f *os.File) error {
	im, imp := j.im, j.imp
	br := bufio.NewReaderSize(f, 64<<10)
	base := skipBOM(br)
	cr := newCSVReader(br)
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("reading the header: %w", err)
	}
	header = slices.Clone(header)
	types, err := im.cfg.AttributeTypes(ctx)
	if err != nil {
		return err
	}
	plan, err := newRowPlan(header, imp.Mapping, types, imp.Lists, imp.Mode)
	if err != nil {
		return j.finish(ctx, store.ImportFailed, err.Error(), imp.Offset, imp.Row)
	}
	row := 1
	if imp.Offset > 0 {
		if _, err := f.Seek(imp.Offset, io.SeekStart); err != nil {
			return err
		}
		br.Reset(f)
		cr, base, row = newCSVReader(br), imp.Offset, imp.Row
	}

	ctx, cancel := context.WithCancel(ctx)
	chunks := make(chan chunk, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		var err error
		if errtrack.Guard(ctx, im.cfg.Errors, "import reader", func() { err = readChunks(ctx, cr, plan, base, row, im.cfg.Chunk, chunks) }) {
			err = errors.New("internal error while reading the file (reported)")
		}
		readErr <- err
	}()
	defer func() { // the reader is done with f before it is closed
		cancel()
		for range chunks {
		}
	}()
	for c := range chunks {
		j.counts.Rows += c.read
		for _, b := range c.bad {
			j.fail(b.Row, b.Field, b.Reason)
		}
		if err := j.apply(ctx, c.items, c.rows); err != nil {
			return err
		}
		if c.last {
			return j.finish(ctx, store.ImportDone, "", c.offset, c.row)
		}
		now := im.cfg.Now().UTC()
		if err := im.cfg.Store.ImportProgress(ctx, store.ImportProgressParams{ID: imp.ID, Owner: im.cfg.Owner,
			Offset: c.offset, Row: c.row, Counts: j.counts, Errors: j.errs, Now: now, LeaseUntil: now.Add(im.cfg.Lease)}); err != nil {
			return err
		}
		j.imp.Offset, j.imp.Row = c.offset, c.row
	}
	if err := <-readErr; err != nil {
		return err
	}
	return ctx.Err()
}

// readChunks reads records from cr (at spool offset base, after row row) into chunks of n
// rows, turning them into upserts and sending them on out, the last one marked, until the end
// of the file, an error or the end of ctx.
func readChunks(ctx context.Context, cr *csv.Reader, plan *rowPlan, base int64, row, n int, out chan<- chunk) error {
	var (
		c    chunk
		keys = map[string]int{} // email key or "ext:" external_id → row, within the chunk
		buf  []byte
	)
	send := func(last bool) bool {
		c.offset, c.row, c.last = base+cr.InputOffset(), row, last
		select {
		case out <- c:
		case <-ctx.Done():
			return false
		}
		c = chunk{}
		clear(keys)
		return true
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			send(true)
			return nil
		}
		if err != nil {
			return err
		}
		row++
		c.read++
		u, b, bad := plan.contact(rec, buf)
		buf = b
		if bad == nil {
			if prev, dup := keys[u.EmailKey]; dup {
				bad = badRow(fieldEmail, "the same address as row %d, in the same chunk", prev)
			} else if prev, dup := keys["ext:"+u.ExternalID]; dup && u.ExternalID != "" {
				bad = badRow(fieldExternalID, "the same external_id as row %d, in the same chunk", prev)
			}
		}
		if bad != nil {
			c.bad = append(c.bad, store.ImportRowError{Row: row, Field: bad.field, Reason: bad.reason})
		} else {
			keys[u.EmailKey] = row
			if u.ExternalID != "" {
				keys["ext:"+u.ExternalID] = row
			}
			c.items = append(c.items, u)
			c.rows = append(c.rows, row)
		}
		if c.read >= n && !send(false) {
			return ctx.Err()
		}
	}
}

// batchRows is the most rows one ContactsUpsert of an import writes. A chunk is applied in
// several such batches, each its own write, so that other writes (transactional accepts) wait
// for one batch at most, not for a whole chunk. Like chunks, batches are independent (a chunk
// has no two rows with the same address or external_id) and idempotent, so replaying a chunk
// after a crash still changes nothing more.
const batchRows = 500

// apply upserts one chunk, batchRows rows at a time, and counts its outcomes.
func (j *job) apply(ctx context.Context, items []store.ContactUpsert, rows []int) error {
	for len(items) > 0 {
		n := min(len(items), batchRows)
		if err := j.applyBatch(ctx, items[:n], rows[:n]); err != nil {
			return err
		}
		items, rows = items[n:], rows[n:]
	}
	return nil
}

func (j *job) applyBatch(ctx context.Context, items []store.ContactUpsert, rows []int) error {
	res, err := j.im.cfg.Store.ContactsUpsert(ctx, store.ContactsUpsertParams{Items: items, Now: j.im.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	for i, r := range res {
		switch {
		case errors.Is(r.Err, store.ErrConflict):
			j.fail(rows[i], fieldExternalID, "the email and the external_id belong to two different contacts")
			continue
		case errors.Is(r.Err, store.ErrNotFound):
			j.fail(rows[i], "", "a list to subscribe to no longer exists")
			continue
		case r.Err != nil:
			j.fail(rows[i], "", r.Err.Error())
			continue
		case r.Existed || r.Outcome == store.UpsertUnchanged:
			j.counts.Skipped++
		case r.Outcome == store.UpsertCreated:
			j.counts.Created++
		case r.Outcome == store.UpsertMerged:
			j.counts.Merged++
		default:
			j.counts.Updated++
		}
		if len(r.Kept) > 0 {
			j.counts.Kept++
		}
	}
	return nil
}

// finish records the end of the import and removes its spool file.
func (j *job) finish(ctx context.Context, status, reason string, offset int64, row int) error {
	err := j.im.cfg.Store.ImportFinish(ctx, store.ImportProgressParams{ID: j.imp.ID, Owner: j.im.cfg.Owner,
		Offset: offset, Row: row, Counts: j.counts, Errors: j.errs, Status: status, Reason: reason,
		Now: j.im.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	_ = os.Remove(j.im.spoolPath(j.imp.ID))
	j.im.log.Info("import finished", "import", j.imp.ID, "status", status, "rows", j.counts.Rows,
		"created", j.counts.Created, "updated", j.counts.Updated, "failed", j.counts.Failed, "reason", reason)
	return nil
}
