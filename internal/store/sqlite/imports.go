package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The SQL of the imports area (store/imports.go).
const (
	importColumns = `id, status, mode, lists, mapping, filename, node, total_rows, counts, errors,
	offset_bytes, row_no, reason, lease_owner, lease_until, created_at, updated_at, started_at, finished_at`

	qImportInsert = `INSERT INTO imports (` + importColumns + `)
		VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, '', ?, ?, ?, ?, NULL, NULL)
		RETURNING ` + importColumns

	qImportGet = `SELECT ` + importColumns + ` FROM imports WHERE id = ?`

	qImportList = `SELECT ` + importColumns + ` FROM imports
		WHERE (?1 = '' OR status = ?1) AND (?2 = '' OR id < ?2) ORDER BY id DESC LIMIT ?3`

	// The claim runs in the one write transaction, so two claimers cannot take one import.
	// It must repeat the condition of the partial index imports_claim to use it.
	qImportClaim = `UPDATE imports SET status = 'running', lease_owner = ?1, lease_until = ?3,
			started_at = coalesce(started_at, ?2), updated_at = ?2
		WHERE id = (SELECT id FROM imports
			WHERE status IN ('queued', 'running')
				AND (lease_owner = ?1 OR lease_until IS NULL OR lease_until <= ?2)
			ORDER BY id LIMIT 1)
		RETURNING ` + importColumns

	qImportProgress = `UPDATE imports SET offset_bytes = ?, row_no = ?, counts = ?, errors = ?,
			lease_until = ?, updated_at = ?
		WHERE id = ? AND lease_owner = ? AND status = 'running'`

	qImportFinish = `UPDATE imports SET status = ?, reason = ?, offset_bytes = ?, row_no = ?, counts = ?,
			errors = ?, lease_owner = '', lease_until = NULL, finished_at = ?, updated_at = ?
		WHERE id = ? AND lease_owner = ? AND status IN ('queued', 'running')`

	qImportExists = `SELECT 1 FROM imports WHERE id = ?`

	qImportRenew = `UPDATE imports SET lease_until = ?, updated_at = ?
		WHERE status IN ('queued', 'running') AND lease_owner = ?`

	// ?1 owner, ?2 owner prefix: both '' release every lease.
	qImportRelease = `UPDATE imports SET lease_until = ?3
		WHERE status IN ('queued', 'running') AND lease_owner <> ''
			AND (?1 = '' OR lease_owner = ?1)
			AND (?2 = '' OR substr(lease_owner, 1, length(?2)) = ?2)`
)

// scanImport reads one row of importColumns.
func scanImport(sc scanner) (store.Import, error) {
	var (
		imp                                         store.Import
		j                                           driverkit.ImportJSON
		lists, mapping, counts, errs                string
		leaseUntil, created, updated, started, fini sql.NullInt64
	)
	if err := sc.Scan(&imp.ID, &imp.Status, &imp.Mode, &lists, &mapping, &imp.Filename, &imp.Node,
		&imp.TotalRows, &counts, &errs, &imp.Offset, &imp.Row, &imp.Reason, &imp.LeaseOwner, &leaseUntil,
		&created, &updated, &started, &fini); err != nil {
		return store.Import{}, err
	}
	j.Lists, j.Mapping, j.Counts, j.Errors = []byte(lists), []byte(mapping), []byte(counts), []byte(errs)
	imp.LeaseUntil = fromMicros(leaseUntil.Int64)
	imp.CreatedAt = fromMicros(created.Int64)
	imp.UpdatedAt = fromMicros(updated.Int64)
	imp.StartedAt = fromMicros(started.Int64)
	imp.FinishedAt = fromMicros(fini.Int64)
	return imp, driverkit.DecodeImportJSON(&imp, j)
}

// ImportCreate implements store.Imports.
func (s *Store) ImportCreate(ctx context.Context, imp store.Import) (store.Import, error) {
	if err := driverkit.CheckImport(imp); err != nil {
		return store.Import{}, fmt.Errorf("sqlite: %w", err)
	}
	j, err := driverkit.EncodeImportJSON(imp)
	if err != nil {
		return store.Import{}, fmt.Errorf("sqlite: import %s: %w", imp.ID, err)
	}
	var out store.Import
	err = s.w.do(ctx, 1, func(t *wtx) error {
		rows, err := t.query(qImportInsert, imp.ID, imp.Mode, string(j.Lists), string(j.Mapping), imp.Filename,
			imp.Node, imp.TotalRows, string(j.Counts), string(j.Errors), imp.LeaseOwner, nullMicros(imp.LeaseUntil),
			micros(imp.CreatedAt), micros(imp.CreatedAt))
		if err != nil {
			return err
		}
		out, err = scanFirst(rows, scanImport)
		return err
	})
	if err != nil {
		return store.Import{}, fmt.Errorf("sqlite: creating import %s: %w", imp.ID, err)
	}
	return out, nil
}

// scanFirst reads the first row of rows with scan (sql.ErrNoRows when there is none) and
// closes them.
func scanFirst[T any](rows *sql.Rows, scan func(scanner) (T, error)) (T, error) {
	defer rows.Close()
	var v T
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return v, err
		}
		return v, sql.ErrNoRows
	}
	v, err := scan(rows)
	if err != nil {
		return v, err
	}
	return v, rows.Close()
}

// ImportGet implements store.Imports.
func (s *Store) ImportGet(ctx context.Context, id string) (store.Import, error) {
	imp, err := readOne(ctx, s, qImportGet, []any{id}, scanImport)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Import{}, fmt.Errorf("import %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Import{}, fmt.Errorf("sqlite: import %s: %w", id, err)
	}
	return imp, nil
}

// ImportList implements store.Imports.
func (s *Store) ImportList(ctx context.Context, p store.ImportListParams) ([]store.Import, string, error) {
	after, err := store.ImportCursorAfter(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	page, err := readAll(ctx, s, qImportList, []any{p.Status, after, limit + 1}, scanImport)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing imports: %w", err)
	}
	page, next := driverkit.ImportPage(page, limit)
	return page, next, nil
}

// ImportClaim implements store.Imports.
func (s *Store) ImportClaim(ctx context.Context, p store.ImportClaimParams) (store.Import, bool, error) {
	var out store.Import
	err := s.w.do(ctx, 1, func(t *wtx) error {
		rows, err := t.query(qImportClaim, p.Owner, micros(p.Now), micros(p.LeaseUntil))
		if err != nil {
			return err
		}
		out, err = scanFirst(rows, scanImport)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Import{}, false, nil
	}
	if err != nil {
		return store.Import{}, false, fmt.Errorf("sqlite: claiming an import: %w", err)
	}
	return out, true, nil
}

// ImportProgress implements store.Imports.
func (s *Store) ImportProgress(ctx context.Context, p store.ImportProgressParams) error {
	counts, errs, err := driverkit.EncodeImportProgress(p.Counts, p.Errors)
	if err != nil {
		return fmt.Errorf("sqlite: import %s: %w", p.ID, err)
	}
	return s.importUpdate(ctx, p.ID, "saving the progress of", qImportProgress, p.Offset, p.Row, string(counts),
		string(errs), micros(p.LeaseUntil), micros(p.Now), p.ID, p.Owner)
}

// ImportFinish implements store.Imports.
func (s *Store) ImportFinish(ctx context.Context, p store.ImportProgressParams) error {
	if err := driverkit.CheckImportFinish(p); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	counts, errs, err := driverkit.EncodeImportProgress(p.Counts, p.Errors)
	if err != nil {
		return fmt.Errorf("sqlite: import %s: %w", p.ID, err)
	}
	return s.importUpdate(ctx, p.ID, "finishing", qImportFinish, p.Status, p.Reason, p.Offset, p.Row,
		string(counts), string(errs), micros(p.Now), micros(p.Now), p.ID, p.Owner)
}

// importUpdate runs an update of one import that applies only under its owner's lease: no row
// changed is ErrNotFound or ErrConflict.
func (s *Store) importUpdate(ctx context.Context, id, what, q string, args ...any) error {
	var n int64
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(q, args...)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var one int
		return t.queryRow(qImportExists, []any{id}, &one)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("import %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlite: %s import %s: %w", what, id, err)
	case n == 0:
		return fmt.Errorf("import %s is not leased to this worker: %w", id, store.ErrConflict)
	}
	return nil
}

// ImportReleaseLeases implements store.Imports.
func (s *Store) ImportReleaseLeases(ctx context.Context, p store.ImportReleaseParams) (int, error) {
	var n int64
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qImportRelease, p.Owner, p.OwnerPrefix, micros(p.Now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: releasing import leases: %w", err)
	}
	return int(n), nil
}

// ImportRenewLeases implements store.Imports.
func (s *Store) ImportRenewLeases(ctx context.Context, p store.ImportRenewParams) (int, error) {
	var n int64
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qImportRenew, micros(p.Until), micros(p.Now), p.Owner)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: renewing import leases: %w", err)
	}
	return int(n), nil
}
