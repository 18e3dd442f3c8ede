package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The SQL of the sync sources area (store/sources.go). Durations are stored in microseconds.
const (
	sourceColumns = `id, name, driver, dsn, query, mapping, lists, interval_us, overlap_us, reconcile_us,
	mark_time, mark_key, settled_at, status, last_error, last_run_at, next_run_at, reconciled_at, failures, last_stats,
	lease_owner, lease_until, created_at, updated_at`

	qSourceInsert = `INSERT INTO sources (id, name, driver, dsn, query, mapping, lists, interval_us,
	overlap_us, reconcile_us, status, next_run_at, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?, ?, ?)`

	qSourceGet  = `SELECT ` + sourceColumns + ` FROM sources WHERE id = ?`
	qSourceList = `SELECT ` + sourceColumns + ` FROM sources ORDER BY id`

	// The DSN is kept when none is given (the API never shows it, so a PATCH cannot echo it).
	qSourceUpdate = `UPDATE sources SET name = ?1, driver = ?2, dsn = coalesce(nullif(?3, ''), dsn), query = ?4,
	mapping = ?5, lists = ?6, interval_us = ?7, overlap_us = ?8, reconcile_us = ?9,
	mark_time = CASE WHEN ?10 THEN NULL ELSE mark_time END, mark_key = CASE WHEN ?10 THEN NULL ELSE mark_key END,
	settled_at = CASE WHEN ?10 THEN NULL ELSE settled_at END,
	next_run_at = coalesce(?11, next_run_at), updated_at = ?12
	WHERE id = ?13`

	qSourceDelete = `DELETE FROM sources WHERE id = ?`

	// A source is claimable when due (or named) and not leased by anyone until after now.
	qSourceClaimable = `SELECT id FROM sources
	WHERE (id = ?1 OR (?1 = '' AND next_run_at <= ?2)) AND (lease_until IS NULL OR lease_until <= ?2)
	ORDER BY next_run_at, id LIMIT ?3`

	qSourceLease = `UPDATE sources SET status = 'running', lease_owner = ?, lease_until = ?, updated_at = ?
	WHERE id = ?`

	qSourceAdvance = `UPDATE sources SET mark_time = ?, mark_key = ?, lease_until = ?, updated_at = ?
	WHERE id = ? AND lease_owner = ? AND lease_until > ?`

	qSourceFinish = `UPDATE sources SET status = ?, last_error = ?, failures = ?, last_stats = ?, last_run_at = ?,
	next_run_at = ?, reconciled_at = coalesce(?, reconciled_at), settled_at = coalesce(?, settled_at),
	lease_owner = '', lease_until = NULL,
	updated_at = ?
	WHERE id = ? AND lease_owner = ? AND lease_until > ?`

	qSourceLinkUpsert = `INSERT INTO source_links (source_id, row_key, contact_id) VALUES (?, ?, ?)
	ON CONFLICT (source_id, row_key) DO UPDATE SET contact_id = excluded.contact_id`

	qSourceUnlink = `DELETE FROM source_links WHERE source_id = ? AND row_key = ?`

	qSourceLinks = `SELECT row_key, contact_id FROM source_links WHERE source_id = ? AND row_key > ?
	ORDER BY row_key LIMIT ?`

	qSourceLinkGet = `SELECT row_key, contact_id FROM source_links WHERE source_id = ? AND row_key = ?`
)

// scanSource reads one row of sourceColumns.
func scanSource(sc scanner) (store.Source, error) {
	var (
		src                                           store.Source
		j                                             driverkit.SourceJSON
		interval, overlap, reconcile, fails           int64
		markTime, settled, lastRun, reconciled, lease sql.NullInt64
		nextRun, created, updated                     int64
		markKey, lists, stats                         sql.NullString
		mapping                                       string
	)
	err := sc.Scan(&src.ID, &src.Name, &src.Driver, &src.DSN, &src.Query, &mapping, &lists, &interval,
		&overlap, &reconcile, &markTime, &markKey, &settled, &src.Status, &src.LastError, &lastRun, &nextRun,
		&reconciled, &fails, &stats, &src.LeaseOwner, &lease, &created, &updated)
	if err != nil {
		return store.Source{}, err
	}
	src.Interval = time.Duration(interval) * time.Microsecond
	src.Overlap = time.Duration(overlap) * time.Microsecond
	src.ReconcileEvery = time.Duration(reconcile) * time.Microsecond
	src.MarkTime, src.LastRunAt = fromMicros(markTime.Int64), fromMicros(lastRun.Int64)
	src.SettledAt = fromMicros(settled.Int64)
	src.NextRunAt, src.ReconciledAt = fromMicros(nextRun), fromMicros(reconciled.Int64)
	src.LeaseUntil, src.CreatedAt, src.UpdatedAt = fromMicros(lease.Int64), fromMicros(created), fromMicros(updated)
	src.Failures = int(fails)
	if markKey.Valid {
		src.MarkKey = []byte(markKey.String)
	}
	j.Mapping = []byte(mapping)
	if lists.Valid {
		j.Lists = []byte(lists.String)
	}
	if stats.Valid {
		j.Stats = []byte(stats.String)
	}
	return src, j.Decode(&src)
}

func durMicros(d time.Duration) int64 { return d.Microseconds() }

// SourceCreate implements store.Sources.
func (s *Store) SourceCreate(ctx context.Context, src store.Source) (store.Source, error) {
	j, err := driverkit.PrepareSource(src, false)
	if err != nil {
		return store.Source{}, fmt.Errorf("sqlite: %w", err)
	}
	err = s.w.do(ctx, 1, func(t *wtx) error {
		_, err := t.exec(qSourceInsert, src.ID, src.Name, src.Driver, src.DSN, src.Query, string(j.Mapping),
			rawJSONText(j.Lists), durMicros(src.Interval), durMicros(src.Overlap), durMicros(src.ReconcileEvery),
			micros(src.NextRunAt), micros(src.CreatedAt), micros(src.CreatedAt))
		return err
	})
	if err != nil {
		return store.Source{}, fmt.Errorf("sqlite: creating source %s: %w", src.ID, err)
	}
	return s.SourceGet(ctx, src.ID)
}

// SourceGet implements store.Sources.
func (s *Store) SourceGet(ctx context.Context, id string) (store.Source, error) {
	src, err := readOne(ctx, s, qSourceGet, []any{id}, scanSource)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Source{}, fmt.Errorf("source %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Source{}, fmt.Errorf("sqlite: source %s: %w", id, err)
	}
	return src, nil
}

// SourceList implements store.Sources.
func (s *Store) SourceList(ctx context.Context) ([]store.Source, error) {
	srcs, err := readAll(ctx, s, qSourceList, nil, scanSource)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing sources: %w", err)
	}
	return srcs, nil
}

// SourceUpdate implements store.Sources.
func (s *Store) SourceUpdate(ctx context.Context, p store.SourceUpdateParams) (store.Source, error) {
	src := p.Source
	j, err := driverkit.PrepareSource(src, true)
	if err != nil {
		return store.Source{}, fmt.Errorf("sqlite: %w", err)
	}
	err = s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qSourceUpdate, src.Name, src.Driver, src.DSN, src.Query, string(j.Mapping),
			rawJSONText(j.Lists), durMicros(src.Interval), durMicros(src.Overlap), durMicros(src.ReconcileEvery),
			p.ResetMark, nullMicros(p.NextRunAt), micros(p.Now), src.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("source %s: %w", src.ID, store.ErrNotFound)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Source{}, err
	}
	if err != nil {
		return store.Source{}, fmt.Errorf("sqlite: updating source %s: %w", src.ID, err)
	}
	return s.SourceGet(ctx, src.ID)
}

// SourceDelete implements store.Sources.
func (s *Store) SourceDelete(ctx context.Context, id string) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qSourceDelete, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("source %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("sqlite: deleting source %s: %w", id, err)
	}
	return err
}

// SourceClaim implements store.Sources: the claimable ids are read and leased in one write
// transaction (the only writer), so two claims never lease one source.
func (s *Store) SourceClaim(ctx context.Context, p store.SourceClaimParams) ([]store.Source, error) {
	var ids []string
	err := s.w.do(ctx, 1, func(t *wtx) error {
		ids = ids[:0]
		rows, err := t.query(qSourceClaimable, p.ID, micros(p.Now), int64(driverkit.SourceLimit(p.Limit)))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := t.exec(qSourceLease, p.Owner, micros(p.Until), micros(p.Now), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claiming sources: %w", err)
	}
	out := make([]store.Source, 0, len(ids))
	for _, id := range ids {
		src, err := s.SourceGet(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}

// leaseHeld is ErrConflict when the update res changed no row: owner no longer holds the lease.
func leaseHeld(res sql.Result, id, owner string) error {
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("source %s: the lease of %s is lost: %w", id, owner, store.ErrConflict)
	}
	return nil
}

// SourceAdvance implements store.Sources.
func (s *Store) SourceAdvance(ctx context.Context, p store.SourceAdvanceParams) error {
	err := s.w.do(ctx, 1+len(p.Link)+len(p.Unlink), func(t *wtx) error {
		res, err := t.exec(qSourceAdvance, nullMicros(p.MarkTime), rawJSONText(p.MarkKey), micros(p.Until),
			micros(p.Now), p.ID, p.Owner, micros(p.Now))
		if err != nil {
			return err
		}
		if err := leaseHeld(res, p.ID, p.Owner); err != nil {
			return err
		}
		for _, l := range p.Link {
			if _, err := t.exec(qSourceLinkUpsert, p.ID, l.Key, l.ContactID); err != nil {
				return err
			}
		}
		for _, k := range p.Unlink {
			if _, err := t.exec(qSourceUnlink, p.ID, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("sqlite: advancing source %s: %w", p.ID, err)
	}
	return err
}

// SourceFinish implements store.Sources.
func (s *Store) SourceFinish(ctx context.Context, p store.SourceFinishParams) error {
	stats, err := driverkit.EncodeSourceStats(p.Stats)
	if err != nil {
		return fmt.Errorf("sqlite: source %s: %w", p.ID, err)
	}
	err = s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qSourceFinish, p.Status, p.LastError, int64(p.Failures), rawJSONText(stats),
			micros(p.Now), micros(p.NextRunAt), nullMicros(p.ReconciledAt), nullMicros(p.SettledAt), micros(p.Now), p.ID, p.Owner, micros(p.Now))
		if err != nil {
			return err
		}
		if err := leaseHeld(res, p.ID, p.Owner); err != nil {
			return err
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("sqlite: finishing source %s: %w", p.ID, err)
	}
	return err
}

func scanSourceLink(sc scanner) (store.SourceLink, error) {
	var l store.SourceLink
	err := sc.Scan(&l.Key, &l.ContactID)
	return l, err
}

// SourceLinks implements store.Sources.
func (s *Store) SourceLinks(ctx context.Context, id, after string, limit int) ([]store.SourceLink, error) {
	links, err := readAll(ctx, s, qSourceLinks, []any{id, after, int64(max(limit, 1))}, scanSourceLink)
	if err != nil {
		return nil, fmt.Errorf("sqlite: links of source %s: %w", id, err)
	}
	return links, nil
}

// SourceLinkGet implements store.Sources.
func (s *Store) SourceLinkGet(ctx context.Context, id, key string) (store.SourceLink, error) {
	l, err := readOne(ctx, s, qSourceLinkGet, []any{id, key}, scanSourceLink)
	if errors.Is(err, sql.ErrNoRows) {
		return store.SourceLink{}, fmt.Errorf("source %s row %s: %w", id, key, store.ErrNotFound)
	}
	if err != nil {
		return store.SourceLink{}, fmt.Errorf("sqlite: link of source %s: %w", id, err)
	}
	return l, nil
}
