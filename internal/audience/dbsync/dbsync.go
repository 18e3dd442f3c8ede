// Package dbsync keeps contacts in step with an application database (a sync source: MySQL,
// MariaDB or PostgreSQL, and a SELECT the operator writes).
//
// # A pass
//
// A node leases a due source (store.Sources.SourceClaim; on PostgreSQL only one node holds a
// source at a time) and reads the SELECT's rows in pages, ordered by (updated_at, key), each page
// starting after the last row of the one before (keyset pagination: rows sharing an updated_at are
// neither skipped nor read twice at a page boundary). The first page starts at the source's
// high-water mark minus the overlap (default five minutes), so that a row committed late with an
// updated_at just before the mark is still read; with no overlap it starts right after the mark's
// (updated_at, key). Times are read and compared in UTC.
//
// The overlap bounds how long a write takes to commit (and how far the writers' clocks are from
// the database's): a row updated before the start of a complete pass minus the overlap, by the
// database's clock, had committed when that pass read. The source keeps that time (SettledAt) and
// the next pass re-reads nothing before it, so a quiet source is not re-read overlap after
// overlap.
//
// Each page becomes one upsert of contacts, validated as the API's are (an opted-out row unsubscribes its contact from every list
// and subscribes it to none; nothing a sync does re-subscribes a contact who left), the contacts
// of rows flagged deleted are deleted, and the mark then advances to the page's last row together
// with the links from rows to contacts (SourceAdvance, one transaction). A crash between the two
// re-applies the page on the next pass, which changes nothing: upserts are idempotent.
//
// Before reading, the SELECT's columns are checked against the mapping: a missing column puts
// the source in error with the reason, and nothing is applied. Any failure is recorded on the
// source (status error, last_error) and the pass is retried with an exponential backoff.
//
// # Reconciliation
//
// Rows deleted outright leave no updated_at to find. Every ReconcileEvery, after its incremental
// read, a pass reads every key of the SELECT and deletes (not erases) the contacts this source
// wrote whose rows are gone or flagged deleted; only contacts linked to this source (source_links)
// are ever deleted. A SELECT that returns no row at all while contacts are linked is taken for a
// mistake (a wrong database, an emptied view): the source goes to error and nothing is deleted.
package dbsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/postie/postie/internal/store"
)

// Store is what a sync keeps: its sources, and the deletion of the contacts they wrote.
type Store interface {
	store.Sources
	ContactDelete(ctx context.Context, p store.ContactDeleteParams) error
}

// Contacts writes contacts as the API does (package audience's Service): each item validated
// (an invalid one is refused alone), a batch in one transaction, and the confirmations of double
// opt-in lists sent.
type Contacts interface {
	Upsert(ctx context.Context, items []store.ContactUpsert) ([]store.ContactUpsertResult, error)
}

// Config configures a Syncer.
type Config struct {
	Store    Store
	Contacts Contacts
	Owner    string // the lease owner naming this node
	Now      func() time.Time
	Logger   *slog.Logger
	// PageSize is the number of rows read and applied at once (default and most: 1000, the
	// size of a contacts batch).
	PageSize int
	// Lease is how long a claimed source stays with this node without progress (default 5 min);
	// every page applied extends it.
	Lease time.Duration
	// MaxBackoff caps the wait before retrying a failed source (default 1 h); the first retry
	// waits 30 s, each next one twice as long.
	MaxBackoff time.Duration
}

// Syncer runs passes of sync sources.
type Syncer struct {
	cfg Config
	log *slog.Logger
}

// ErrBusy: another node holds the source's lease.
var ErrBusy = errors.New("the source is being run by another node")

// New builds a Syncer.
func New(cfg Config) *Syncer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 1000 {
		cfg.PageSize = 1000
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 5 * time.Minute
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Hour
	}
	return &Syncer{cfg: cfg, log: cfg.Logger.With("component", "sync")}
}

func (s *Syncer) now() time.Time { return s.cfg.Now().UTC() }

// RunDue runs one pass of every due source this node can lease and returns how many ran.
func (s *Syncer) RunDue(ctx context.Context) (int, error) {
	now := s.now()
	srcs, err := s.cfg.Store.SourceClaim(ctx, store.SourceClaimParams{Owner: s.cfg.Owner, Now: now,
		Until: now.Add(s.cfg.Lease)})
	if err != nil {
		return 0, err
	}
	for _, src := range srcs {
		s.pass(ctx, src, false)
	}
	return len(srcs), nil
}

// RunOne runs one pass of a source now, whatever its schedule (with a reconciliation when
// reconcile, or when one is due), and returns the source as the pass left it. ErrBusy when
// another node is running it.
func (s *Syncer) RunOne(ctx context.Context, id string, reconcile bool) (store.Source, error) {
	now := s.now()
	srcs, err := s.cfg.Store.SourceClaim(ctx, store.SourceClaimParams{ID: id, Owner: s.cfg.Owner, Now: now,
		Until: now.Add(s.cfg.Lease)})
	if err != nil {
		return store.Source{}, err
	}
	if len(srcs) == 0 {
		if _, err := s.cfg.Store.SourceGet(ctx, id); err != nil {
			return store.Source{}, err
		}
		return store.Source{}, fmt.Errorf("source %s: %w", id, ErrBusy)
	}
	s.pass(ctx, srcs[0], reconcile)
	return s.cfg.Store.SourceGet(context.WithoutCancel(ctx), id)
}

// Run runs due sources every poll until ctx ends.
func (s *Syncer) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("claiming sync sources failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass runs one pass of a claimed source and records its outcome.
func (s *Syncer) pass(ctx context.Context, src store.Source, reconcile bool) {
	log := s.log.With("source", src.ID)
	p := &run{s: s, src: src, mark: position{Time: src.MarkTime}}
	err := p.do(ctx, reconcile)
	now := s.now()
	fin := store.SourceFinishParams{ID: src.ID, Owner: s.cfg.Owner, Status: store.SourceOK, Stats: p.stats,
		NextRunAt: now.Add(src.Interval), Now: now, ReconciledAt: p.reconciledAt, SettledAt: p.settledAt}
	if errors.Is(err, store.ErrConflict) {
		log.Warn("lost the lease of a sync source; another node took it over", "err", err)
		return
	}
	if err != nil && ctx.Err() != nil {
		// Stopped (a shutdown): what was applied is in the mark; the next node to look resumes.
		fin.NextRunAt, fin.Failures = now, src.Failures
		log.Info("sync pass interrupted", "rows", p.stats.Rows)
	} else if err != nil {
		fin.Status, fin.LastError, fin.Failures = store.SourceError, err.Error(), src.Failures+1
		fin.NextRunAt = now.Add(s.backoff(fin.Failures))
		log.Warn("sync pass failed", "err", err, "failures", fin.Failures, "retry_at", fin.NextRunAt)
	} else {
		log.Info("sync pass done", "rows", p.stats.Rows, "upserted", p.stats.Upserted, "deleted", p.stats.Deleted,
			"skipped", p.stats.Skipped, "reconciled", p.stats.Reconciled)
	}
	// The outcome is recorded even when ctx ended (a shutdown), so the source is not left running.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.cfg.Store.SourceFinish(fctx, fin); err != nil {
		log.Error("recording a sync pass failed", "err", err)
	}
}

// backoff is the wait before the n-th retry: 30 s, 1 min, 2 min, … capped at MaxBackoff.
func (s *Syncer) backoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.cfg.MaxBackoff)
}

// run is the state of one pass.
type run struct {
	s            *Syncer
	src          store.Source
	r            *reader
	mark         position // the durable mark, as advanced
	stats        store.SourceStats
	reconciledAt time.Time
	settledAt    time.Time // set when the pass completes
}

// maxSkipErrors is how many skip reasons a pass keeps.
const maxSkipErrors = 10

func (p *run) do(ctx context.Context, reconcile bool) error {
	db, err := openDB(p.src.Driver, p.src.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	p.r = &reader{db: db, driver: p.src.Driver, query: trimQuery(p.src.Query), mapping: p.src.Mapping}
	if err := p.r.probe(ctx); err != nil {
		return err
	}
	if p.mark.Key, err = decodeKey(p.src.MarkKey); err != nil {
		return err
	}
	// Rows that commit from now on are after began − overlap (the overlap bounds how long a
	// write takes to commit, and how far the writers' clocks are from the database's).
	began, err := p.r.now(ctx)
	if err != nil {
		return err
	}
	start := p.mark
	if from := p.mark.Time.Add(-p.src.Overlap); !p.mark.Time.IsZero() && p.src.Overlap > 0 {
		// Re-read the overlap, except what the last complete pass saw settled.
		from = maxTime(from, p.src.SettledAt)
		if from.Before(p.mark.Time) {
			start = position{Time: from}
		}
	}
	if err := p.incremental(ctx, start); err != nil {
		return err
	}
	base := p.src.ReconciledAt
	if base.IsZero() {
		base = p.src.CreatedAt
	}
	if reconcile || p.src.ReconcileEvery > 0 && !p.s.now().Before(base.Add(p.src.ReconcileEvery)) {
		if err := p.reconcile(ctx); err != nil {
			return err
		}
	}
	p.settledAt = began.Add(-p.src.Overlap)
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// page is one page read, or the error that ended the reading.
type page struct {
	rows []row
	err  error
}

// incremental reads the pages from start and applies them in order. The next page is read
// while one is applied, so the source database's time and postie's overlap.
func (p *run) incremental(ctx context.Context, start position) error {
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan page, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		defer close(pages)
		for {
			rows, err := p.r.page(ctx, start, p.s.cfg.PageSize)
			select {
			case pages <- page{rows, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(rows) < p.s.cfg.PageSize {
				return
			}
			last := rows[len(rows)-1]
			start = position{Time: last.updatedAt, Key: last.key}
		}
	})
	for pg := range pages {
		if pg.err != nil {
			return pg.err
		}
		if len(pg.rows) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// A page once begun is finished, its mark stored, even when the node is stopping.
		if err := p.apply(context.WithoutCancel(ctx), pg.rows); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// apply writes one page: upserts, deletions, then the mark and links. The mark never moves
// back (an overlap re-reads rows before it).
func (p *run) apply(ctx context.Context, rows []row) error {
	p.stats.Rows += len(rows)
	var (
		items   []store.ContactUpsert
		keys    []string
		deleted []string
	)
	for _, rw := range rows {
		m, err := p.r.mapRow(rw, p.src.Lists)
		switch {
		case err != nil:
			p.skip(err)
		case m.deleted:
			deleted = append(deleted, m.key)
		default:
			items = append(items, m.upsert)
			keys = append(keys, m.key)
		}
	}
	now := p.s.now()
	var links []store.SourceLink
	if len(items) > 0 {
		res, err := p.s.cfg.Contacts.Upsert(ctx, items)
		if err != nil {
			return err
		}
		for i, r := range res {
			if r.Err != nil {
				p.skip(fmt.Errorf("%w: key %s: %v", errSkip, keys[i], r.Err))
				continue
			}
			p.stats.Upserted++
			links = append(links, store.SourceLink{Key: keys[i], ContactID: r.ID})
		}
	}
	unlink, err := p.deleteLinked(ctx, deleted, now)
	if err != nil {
		return err
	}
	last := rows[len(rows)-1]
	if pos := (position{Time: last.updatedAt, Key: last.key}); after(pos, p.mark) {
		p.mark = pos
	}
	return p.s.cfg.Store.SourceAdvance(ctx, store.SourceAdvanceParams{ID: p.src.ID, Owner: p.s.cfg.Owner,
		MarkTime: p.mark.Time, MarkKey: encodeKey(p.mark.Key), Link: links, Unlink: unlink,
		Until: now.Add(p.s.cfg.Lease), Now: now})
}

// after reports whether a is after b in (updated_at, key) order, as far as Go can tell: keys of
// one type compare, other pairs count as after.
func after(a, b position) bool {
	if b.Time.IsZero() || a.Time.After(b.Time) {
		return true
	}
	if a.Time.Before(b.Time) {
		return false
	}
	switch bk := b.Key.(type) {
	case int64:
		ak, ok := a.Key.(int64)
		return !ok || ak > bk
	case string:
		ak, ok := a.Key.(string)
		return !ok || ak > bk
	}
	return true
}

// deleteLinked deletes the contacts of keys this source linked and returns the keys to unlink.
func (p *run) deleteLinked(ctx context.Context, keys []string, now time.Time) ([]string, error) {
	var unlink []string
	for _, k := range keys {
		l, err := p.s.cfg.Store.SourceLinkGet(ctx, p.src.ID, k)
		if errors.Is(err, store.ErrNotFound) {
			continue // never synced, or already deleted
		}
		if err != nil {
			return nil, err
		}
		err = p.s.cfg.Store.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: l.ContactID}, Now: now})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			p.stats.Deleted++
		}
		unlink = append(unlink, k)
	}
	return unlink, nil
}

func (p *run) skip(err error) {
	p.stats.Skipped++
	if len(p.stats.SkipErrors) < maxSkipErrors {
		p.stats.SkipErrors = append(p.stats.SkipErrors, err.Error())
	}
}

// reconcile deletes the contacts linked to rows that are gone or flagged deleted. The source's
// keys are held in memory (a set of strings: some tens of MB for a million rows).
func (p *run) reconcile(ctx context.Context) error {
	live := map[string]struct{}{}
	err := p.r.keys(ctx, func(key string, deleted bool) {
		if !deleted {
			live[key] = struct{}{}
		}
	})
	if err != nil {
		return err
	}
	const chunk = 1000
	after := ""
	for {
		links, err := p.s.cfg.Store.SourceLinks(ctx, p.src.ID, after, chunk)
		if err != nil {
			return err
		}
		if len(links) == 0 {
			break
		}
		after = links[len(links)-1].Key
		if len(live) == 0 {
			return fmt.Errorf("reconciliation: the SELECT returned no row while %s has contacts; nothing deleted (a wrong database or an emptied table?)", p.src.ID)
		}
		var gone []string
		for _, l := range links {
			if _, ok := live[l.Key]; !ok {
				gone = append(gone, l.Key)
			}
		}
		now := p.s.now()
		unlink, err := p.deleteLinked(ctx, gone, now)
		if err != nil {
			return err
		}
		if len(unlink) > 0 {
			err = p.s.cfg.Store.SourceAdvance(ctx, store.SourceAdvanceParams{ID: p.src.ID, Owner: p.s.cfg.Owner,
				MarkTime: p.mark.Time, MarkKey: encodeKey(p.mark.Key), Unlink: unlink, Until: now.Add(p.s.cfg.Lease), Now: now})
			if err != nil {
				return err
			}
		}
		if len(links) < chunk {
			break
		}
	}
	p.stats.Reconciled = true
	p.reconciledAt = p.s.now()
	return nil
}
