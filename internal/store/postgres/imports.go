package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The SQL of the imports area (store/imports.go). JSON columns are bound as strings, which every
// query exec mode (the simple protocol included) passes as text.
const (
	importColumns = `id, status, mode, lists, mapping, filename, node, total_rows, counts, errors,
	offset_bytes, row_no, reason, lease_owner, lease_until, created_at, updated_at, started_at, finished_at`

	qImportInsert = `INSERT INTO imports (` + importColumns + `)
		VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, '', $10, $11, $12, $12, NULL, NULL)
		RETURNING ` + importColumns

	qImportGet = `SELECT ` + importColumns + ` FROM imports WHERE id = $1`

	qImportList = `SELECT ` + importColumns + ` FROM imports
		WHERE ($1 = '' OR status = $1) AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`

	// SKIP LOCKED: concurrent claimers on any node pass over the import another is taking and
	// never take the same one. The condition repeats the partial index imports_claim's.
	qImportClaim = `UPDATE imports SET status = 'running', lease_owner = $1, lease_until = $3,
			started_at = coalesce(started_at, $2), updated_at = $2
		WHERE id = (SELECT id FROM imports
			WHERE status IN ('queued', 'running')
				AND (lease_owner = $1 OR lease_until IS NULL OR lease_until <= $2)
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING ` + importColumns

	qImportProgress = `UPDATE imports SET offset_bytes = $1, row_no = $2, counts = $3, errors = $4,
			lease_until = $5, updated_at = $6
		WHERE id = $7 AND lease_owner = $8 AND status = 'running'`

	qImportFinish = `UPDATE imports SET status = $1, reason = $2, offset_bytes = $3, row_no = $4, counts = $5,
			errors = $6, lease_owner = '', lease_until = NULL, finished_at = $7, updated_at = $7
		WHERE id = $8 AND lease_owner = $9 AND status IN ('queued', 'running')`

	qImportExists = `SELECT 1 FROM imports WHERE id = $1`

	qImportRenew = `UPDATE imports SET lease_until = $1, updated_at = $2
		WHERE status IN ('queued', 'running') AND lease_owner = $3`

	// $1 owner, $2 owner prefix: both '' release every lease.
	qImportRelease = `UPDATE imports SET lease_until = $3
		WHERE status IN ('queued', 'running') AND lease_owner <> ''
			AND ($1 = '' OR lease_owner = $1) AND left(lease_owner, length($2)) = $2`
)

// scanImport reads one row of importColumns.
func scanImport(sc scanner) (store.Import, error) {
	var (
		imp                                         store.Import
		j                                           driverkit.ImportJSON
		total, row                                  int64
		leaseUntil, created, updated, started, fini pgtype.Timestamptz
	)
	if err := sc.Scan(&imp.ID, &imp.Status, &imp.Mode, &j.Lists, &j.Mapping, &imp.Filename, &imp.Node,
		&total, &j.Counts, &j.Errors, &imp.Offset, &row, &imp.Reason, &imp.LeaseOwner, &leaseUntil,
		&created, &updated, &started, &fini); err != nil {
		return store.Import{}, err
	}
	imp.TotalRows, imp.Row = int(total), int(row)
	imp.LeaseUntil = fromTS(leaseUntil)
	imp.CreatedAt = fromTS(created)
	imp.UpdatedAt = fromTS(updated)
	imp.StartedAt = fromTS(started)
	imp.FinishedAt = fromTS(fini)
	return imp, driverkit.DecodeImportJSON(&imp, j)
}

// ImportCreate implements store.Imports.
func (s *Store) ImportCreate(ctx context.Context, imp store.Import) (store.Import, error) {
	if err := driverkit.CheckImport(imp); err != nil {
		return store.Import{}, fmt.Errorf("postgres: %w", err)
	}
	j, err := driverkit.EncodeImportJSON(imp)
	if err != nil {
		return store.Import{}, fmt.Errorf("postgres: import %s: %w", imp.ID, err)
	}
	out, err := scanImport(s.pool.QueryRow(ctx, qImportInsert, imp.ID, imp.Mode, string(j.Lists),
		string(j.Mapping), imp.Filename, imp.Node, int64(imp.TotalRows), string(j.Counts), string(j.Errors), imp.LeaseOwner, ts(imp.LeaseUntil),
		tsNotNull(imp.CreatedAt)))
	if err != nil {
		return store.Import{}, fmt.Errorf("postgres: creating import %s: %w", imp.ID, unavailable(err))
	}
	return out, nil
}

// ImportGet implements store.Imports.
func (s *Store) ImportGet(ctx context.Context, id string) (store.Import, error) {
	imp, err := scanImport(s.pool.QueryRow(ctx, qImportGet, id))
	if noRows(err) {
		return store.Import{}, fmt.Errorf("import %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Import{}, fmt.Errorf("postgres: import %s: %w", id, unavailable(err))
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
	rows, err := s.pool.Query(ctx, qImportList, p.Status, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing imports: %w", unavailable(err))
	}
	page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Import, error) { return scanImport(r) })
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing imports: %w", unavailable(err))
	}
	page, next := driverkit.ImportPage(page, limit)
	return page, next, nil
}

// ImportClaim implements store.Imports.
func (s *Store) ImportClaim(ctx context.Context, p store.ImportClaimParams) (store.Import, bool, error) {
	imp, err := scanImport(s.pool.QueryRow(ctx, qImportClaim, p.Owner, tsNotNull(p.Now), tsNotNull(p.LeaseUntil)))
	if noRows(err) {
		return store.Import{}, false, nil
	}
	if err != nil {
		return store.Import{}, false, fmt.Errorf("postgres: claiming an import: %w", unavailable(err))
	}
	return imp, true, nil
}

// ImportProgress implements store.Imports.
func (s *Store) ImportProgress(ctx context.Context, p store.ImportProgressParams) error {
	counts, errs, err := driverkit.EncodeImportProgress(p.Counts, p.Errors)
	if err != nil {
		return fmt.Errorf("postgres: import %s: %w", p.ID, err)
	}
	return s.importUpdate(ctx, p.ID, "saving the progress of", qImportProgress, p.Offset, int64(p.Row),
		string(counts), string(errs), tsNotNull(p.LeaseUntil), tsNotNull(p.Now), p.ID, p.Owner)
}

// ImportFinish implements store.Imports.
func (s *Store) ImportFinish(ctx context.Context, p store.ImportProgressParams) error {
	if err := driverkit.CheckImportFinish(p); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	counts, errs, err := driverkit.EncodeImportProgress(p.Counts, p.Errors)
	if err != nil {
		return fmt.Errorf("postgres: import %s: %w", p.ID, err)
	}
	return s.importUpdate(ctx, p.ID, "finishing", qImportFinish, p.Status, p.Reason, p.Offset, int64(p.Row),
		string(counts), string(errs), tsNotNull(p.Now), p.ID, p.Owner)
}

// importUpdate runs an update of one import that applies only under its owner's lease: no row
// changed is ErrNotFound or ErrConflict.
func (s *Store) importUpdate(ctx context.Context, id, what, q string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("postgres: %s import %s: %w", what, id, unavailable(err))
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var one int
	err = s.pool.QueryRow(ctx, qImportExists, id).Scan(&one)
	switch {
	case noRows(err):
		return fmt.Errorf("import %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: %s import %s: %w", what, id, unavailable(err))
	}
	return fmt.Errorf("import %s is not leased to this worker: %w", id, store.ErrConflict)
}

// ImportReleaseLeases implements store.Imports.
func (s *Store) ImportReleaseLeases(ctx context.Context, p store.ImportReleaseParams) (int, error) {
	tag, err := s.pool.Exec(ctx, qImportRelease, p.Owner, p.OwnerPrefix, tsNotNull(p.Now))
	if err != nil {
		return 0, fmt.Errorf("postgres: releasing import leases: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

// ImportRenewLeases implements store.Imports.
func (s *Store) ImportRenewLeases(ctx context.Context, p store.ImportRenewParams) (int, error) {
	tag, err := s.pool.Exec(ctx, qImportRenew, tsNotNull(p.Until), tsNotNull(p.Now), p.Owner)
	if err != nil {
		return 0, fmt.Errorf("postgres: renewing import leases: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}
