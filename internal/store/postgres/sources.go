package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7::text::jsonb, $8, $9, $10, 'ok', $11, $12, $12)`

	qSourceGet  = `SELECT ` + sourceColumns + ` FROM sources WHERE id = $1`
	qSourceList = `SELECT ` + sourceColumns + ` FROM sources ORDER BY id`

	// The DSN is kept when none is given (the API never shows it, so a PATCH cannot echo it).
	qSourceUpdate = `UPDATE sources SET name = $1, driver = $2, dsn = coalesce(nullif($3, ''), dsn), query = $4,
	mapping = $5::text::jsonb, lists = $6::text::jsonb, interval_us = $7, overlap_us = $8, reconcile_us = $9,
	mark_time = CASE WHEN $10 THEN NULL ELSE mark_time END, mark_key = CASE WHEN $10 THEN NULL ELSE mark_key END,
	settled_at = CASE WHEN $10 THEN NULL ELSE settled_at END,
	next_run_at = coalesce($11, next_run_at), updated_at = $12
	WHERE id = $13`

	qSourceDelete = `DELETE FROM sources WHERE id = $1`

	// Claimable: due (or named) and not leased until after now. FOR UPDATE SKIP LOCKED: two nodes
	// claiming at once take different sources, and the lease check is made on the locked row.
	qSourceClaim = `UPDATE sources SET status = 'running', lease_owner = $3, lease_until = $4, updated_at = $2
	WHERE id IN (SELECT id FROM sources
		WHERE (id = $1 OR ($1 = '' AND next_run_at <= $2)) AND (lease_until IS NULL OR lease_until <= $2)
		ORDER BY next_run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)
	RETURNING ` + sourceColumns

	qSourceAdvance = `UPDATE sources SET mark_time = $1, mark_key = $2, lease_until = $3, updated_at = $4
	WHERE id = $5 AND lease_owner = $6 AND lease_until > $4`

	qSourceFinish = `UPDATE sources SET status = $1, last_error = $2, failures = $3, last_stats = $4::text::jsonb,
	last_run_at = $5, next_run_at = $6, reconciled_at = coalesce($7, reconciled_at),
	settled_at = coalesce($10, settled_at), lease_owner = '',
	lease_until = NULL, updated_at = $5
	WHERE id = $8 AND lease_owner = $9 AND lease_until > $5`

	qSourceLinkUpsert = `INSERT INTO source_links (source_id, row_key, contact_id)
	SELECT $1, k, c FROM unnest($2::text[], $3::text[]) AS l (k, c)
	ON CONFLICT (source_id, row_key) DO UPDATE SET contact_id = excluded.contact_id`

	qSourceUnlink = `DELETE FROM source_links WHERE source_id = $1 AND row_key = ANY ($2::text[])`

	qSourceLinks = `SELECT row_key, contact_id FROM source_links WHERE source_id = $1 AND row_key > $2
	ORDER BY row_key LIMIT $3`

	qSourceLinkGet = `SELECT row_key, contact_id FROM source_links WHERE source_id = $1 AND row_key = $2`
)

// scanSource reads one row of sourceColumns.
func scanSource(sc scanner) (store.Source, error) {
	var (
		src                                 store.Source
		j                                   driverkit.SourceJSON
		interval, overlap, reconcile        int64
		fails                               int32
		markTime, settled, lastRun, nextRun pgtype.Timestamptz
		reconciled                          pgtype.Timestamptz
		lease, created, updated             pgtype.Timestamptz
		markKey                             pgtype.Text
	)
	err := sc.Scan(&src.ID, &src.Name, &src.Driver, &src.DSN, &src.Query, &j.Mapping, &j.Lists, &interval,
		&overlap, &reconcile, &markTime, &markKey, &settled, &src.Status, &src.LastError, &lastRun, &nextRun,
		&reconciled, &fails, &j.Stats, &src.LeaseOwner, &lease, &created, &updated)
	if err != nil {
		return store.Source{}, err
	}
	src.Interval = time.Duration(interval) * time.Microsecond
	src.Overlap = time.Duration(overlap) * time.Microsecond
	src.ReconcileEvery = time.Duration(reconcile) * time.Microsecond
	src.MarkTime, src.LastRunAt, src.NextRunAt = fromTS(markTime), fromTS(lastRun), fromTS(nextRun)
	src.ReconciledAt, src.LeaseUntil, src.SettledAt = fromTS(reconciled), fromTS(lease), fromTS(settled)
	src.CreatedAt, src.UpdatedAt = fromTS(created), fromTS(updated)
	src.Failures = int(fails)
	if markKey.Valid {
		src.MarkKey = []byte(markKey.String)
	}
	return src, j.Decode(&src)
}

func markKeyText(b []byte) pgtype.Text { return pgtype.Text{String: string(b), Valid: len(b) > 0} }

// SourceCreate implements store.Sources.
func (s *Store) SourceCreate(ctx context.Context, src store.Source) (store.Source, error) {
	j, err := driverkit.PrepareSource(src, false)
	if err != nil {
		return store.Source{}, fmt.Errorf("postgres: %w", err)
	}
	_, err = s.pool.Exec(ctx, qSourceInsert, src.ID, src.Name, src.Driver, src.DSN, src.Query, toText(j.Mapping),
		toText(j.Lists), src.Interval.Microseconds(), src.Overlap.Microseconds(), src.ReconcileEvery.Microseconds(),
		tsNotNull(src.NextRunAt), tsNotNull(src.CreatedAt))
	if err != nil {
		return store.Source{}, fmt.Errorf("postgres: creating source %s: %w", src.ID, unavailable(err))
	}
	return s.SourceGet(ctx, src.ID)
}

// SourceGet implements store.Sources.
func (s *Store) SourceGet(ctx context.Context, id string) (store.Source, error) {
	src, err := scanSource(s.pool.QueryRow(ctx, qSourceGet, id))
	if noRows(err) {
		return store.Source{}, fmt.Errorf("source %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Source{}, fmt.Errorf("postgres: source %s: %w", id, unavailable(err))
	}
	return src, nil
}

func collectSources(rows pgx.Rows) ([]store.Source, error) {
	defer rows.Close()
	var out []store.Source
	for rows.Next() {
		src, err := scanSource(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, rows.Err()
}

// SourceList implements store.Sources.
func (s *Store) SourceList(ctx context.Context) ([]store.Source, error) {
	rows, err := s.pool.Query(ctx, qSourceList)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing sources: %w", unavailable(err))
	}
	out, err := collectSources(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing sources: %w", unavailable(err))
	}
	return out, nil
}

// SourceUpdate implements store.Sources.
func (s *Store) SourceUpdate(ctx context.Context, p store.SourceUpdateParams) (store.Source, error) {
	src := p.Source
	j, err := driverkit.PrepareSource(src, true)
	if err != nil {
		return store.Source{}, fmt.Errorf("postgres: %w", err)
	}
	tag, err := s.pool.Exec(ctx, qSourceUpdate, src.Name, src.Driver, src.DSN, src.Query, toText(j.Mapping),
		toText(j.Lists), src.Interval.Microseconds(), src.Overlap.Microseconds(), src.ReconcileEvery.Microseconds(),
		p.ResetMark, ts(p.NextRunAt), tsNotNull(p.Now), src.ID)
	if err != nil {
		return store.Source{}, fmt.Errorf("postgres: updating source %s: %w", src.ID, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return store.Source{}, fmt.Errorf("source %s: %w", src.ID, store.ErrNotFound)
	}
	return s.SourceGet(ctx, src.ID)
}

// SourceDelete implements store.Sources.
func (s *Store) SourceDelete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, qSourceDelete, id)
	if err != nil {
		return fmt.Errorf("postgres: deleting source %s: %w", id, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("source %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// SourceClaim implements store.Sources.
func (s *Store) SourceClaim(ctx context.Context, p store.SourceClaimParams) ([]store.Source, error) {
	rows, err := s.pool.Query(ctx, qSourceClaim, p.ID, tsNotNull(p.Now), p.Owner, tsNotNull(p.Until),
		driverkit.SourceLimit(p.Limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: claiming sources: %w", unavailable(err))
	}
	out, err := collectSources(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: claiming sources: %w", unavailable(err))
	}
	return out, nil
}

// SourceAdvance implements store.Sources.
func (s *Store) SourceAdvance(ctx context.Context, p store.SourceAdvanceParams) error {
	keys, contacts := make([]string, len(p.Link)), make([]string, len(p.Link))
	for i, l := range p.Link {
		keys[i], contacts[i] = l.Key, l.ContactID
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, qSourceAdvance, ts(p.MarkTime), markKeyText(p.MarkKey), tsNotNull(p.Until),
			tsNotNull(p.Now), p.ID, p.Owner)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("source %s: the lease of %s is lost: %w", p.ID, p.Owner, store.ErrConflict)
		}
		if len(keys) > 0 {
			if _, err := tx.Exec(ctx, qSourceLinkUpsert, p.ID, keys, contacts); err != nil {
				return err
			}
		}
		if len(p.Unlink) > 0 {
			if _, err := tx.Exec(ctx, qSourceUnlink, p.ID, p.Unlink); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("postgres: advancing source %s: %w", p.ID, unavailable(err))
	}
	return err
}

// SourceFinish implements store.Sources.
func (s *Store) SourceFinish(ctx context.Context, p store.SourceFinishParams) error {
	stats, err := driverkit.EncodeSourceStats(p.Stats)
	if err != nil {
		return fmt.Errorf("postgres: source %s: %w", p.ID, err)
	}
	tag, err := s.pool.Exec(ctx, qSourceFinish, p.Status, p.LastError, int32(p.Failures), toText(stats),
		tsNotNull(p.Now), tsNotNull(p.NextRunAt), ts(p.ReconciledAt), p.ID, p.Owner, ts(p.SettledAt))
	if err != nil {
		return fmt.Errorf("postgres: finishing source %s: %w", p.ID, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("source %s: the lease of %s is lost: %w", p.ID, p.Owner, store.ErrConflict)
	}
	return nil
}

// SourceLinks implements store.Sources.
func (s *Store) SourceLinks(ctx context.Context, id, after string, limit int) ([]store.SourceLink, error) {
	rows, err := s.pool.Query(ctx, qSourceLinks, id, after, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("postgres: links of source %s: %w", id, unavailable(err))
	}
	defer rows.Close()
	var out []store.SourceLink
	for rows.Next() {
		var l store.SourceLink
		if err := rows.Scan(&l.Key, &l.ContactID); err != nil {
			return nil, fmt.Errorf("postgres: links of source %s: %w", id, unavailable(err))
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: links of source %s: %w", id, unavailable(err))
	}
	return out, nil
}

// SourceLinkGet implements store.Sources.
func (s *Store) SourceLinkGet(ctx context.Context, id, key string) (store.SourceLink, error) {
	var l store.SourceLink
	err := s.pool.QueryRow(ctx, qSourceLinkGet, id, key).Scan(&l.Key, &l.ContactID)
	if noRows(err) {
		return store.SourceLink{}, fmt.Errorf("source %s row %s: %w", id, key, store.ErrNotFound)
	}
	if err != nil {
		return store.SourceLink{}, fmt.Errorf("postgres: link of source %s: %w", id, unavailable(err))
	}
	return l, nil
}
