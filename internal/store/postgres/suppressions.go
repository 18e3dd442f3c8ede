package postgres

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// suppressionArgs returns the values of suppressionColumns for s, which driverkit.CheckSuppression
// passed.
func suppressionArgs(s store.Suppression) []any {
	return []any{s.Email, cmp.Or(s.Scope, store.ScopeGlobal), s.Reason, s.Detail, s.MessageID, tsNotNull(s.CreatedAt), ts(s.ExpiresAt)}
}

// scanSuppression reads one row of suppressionColumns.
func scanSuppression(sc scanner) (store.Suppression, error) {
	var (
		s                store.Suppression
		created, expires pgtype.Timestamptz
	)
	if err := sc.Scan(&s.Email, &s.Scope, &s.Reason, &s.Detail, &s.MessageID, &created, &expires); err != nil {
		return store.Suppression{}, err
	}
	s.CreatedAt = fromTS(created)
	s.ExpiresAt = fromTS(expires)
	return s, nil
}

// SuppressionUpsert implements store.Store. Every suppression needs an Email, a Reason and a
// CreatedAt; all are written in one statement (the last one of an address wins).
func (s *Store) SuppressionUpsert(ctx context.Context, sups []store.Suppression) error {
	rows := make([][]any, len(sups))
	for i, sup := range sups {
		sup, err := driverkit.CheckSuppression(sup)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		rows[i] = suppressionArgs(sup)
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, qSuppressionUpsert, columns(rows, suppressionParamTypes...)...); err != nil {
		return fmt.Errorf("postgres: adding suppressions: %w", unavailable(err))
	}
	return nil
}

// SuppressionGet implements store.Store.
func (s *Store) SuppressionGet(ctx context.Context, email, scope string, now time.Time) (store.Suppression, error) {
	email = driverkit.SuppressionKey(email)
	sup, err := scanSuppression(s.pool.QueryRow(ctx, qSuppressionGet, email, ts(now), cmp.Or(scope, store.ScopeGlobal)))
	if noRows(err) {
		return store.Suppression{}, fmt.Errorf("suppression of %s: %w", email, store.ErrNotFound)
	}
	if err != nil {
		return store.Suppression{}, fmt.Errorf("postgres: suppression of %s: %w", email, unavailable(err))
	}
	return sup, nil
}

// SuppressionDelete implements store.Store. Expired suppressions are deleted too.
func (s *Store) SuppressionDelete(ctx context.Context, email, scope string) error {
	email = driverkit.SuppressionKey(email)
	tag, err := s.pool.Exec(ctx, qSuppressionDelete, email, cmp.Or(scope, store.ScopeGlobal))
	if err != nil {
		return fmt.Errorf("postgres: deleting the suppression of %s: %w", email, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("suppression of %s: %w", email, store.ErrNotFound)
	}
	return nil
}

// SuppressionMatch implements store.Store: one query, one primary-key probe per distinct address
// and scope.
func (s *Store) SuppressionMatch(ctx context.Context, emails, scopes []string, now time.Time) (map[string][]store.Suppression, error) {
	out := map[string][]store.Suppression{}
	lower := driverkit.LowerDistinct(emails)
	if len(lower) == 0 {
		return out, nil
	}
	sups, err := readAll(ctx, s, qSuppressionMatch, []any{lower, tsNotNull(now), driverkit.SuppressionScopes(scopes)}, scanSuppression)
	if err != nil {
		return nil, fmt.Errorf("postgres: matching suppressions: %w", unavailable(err))
	}
	for _, sup := range sups {
		out[sup.Email] = append(out[sup.Email], sup)
	}
	return out, nil
}

// SuppressionList implements store.Store. The cursor is the (created_at, email) of the page's
// last row, base64url-encoded, in the SQLite driver's format.
func (s *Store) SuppressionList(ctx context.Context, p store.SuppressionListParams) ([]store.Suppression, string, error) {
	var w where
	if p.Reason != "" {
		w.add(qSuppressionListReason, p.Reason)
	}
	if p.Scope != "" {
		w.add(qSuppressionListScope, p.Scope)
	}
	if p.Email != "" {
		w.add(qSuppressionListEmail, driverkit.SuppressionKey(p.Email))
	}
	if !p.Now.IsZero() {
		w.add(qSuppressionListActive, ts(p.Now))
	}
	if p.Cursor != "" {
		created, email, scope, err := store.SuppressionCursorAfter(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(qSuppressionListCursor, ts(created), email, scope)
	}
	limit := driverkit.ListLimit(p.Limit)
	// One row more than the page tells whether there is a next page.
	q, args := w.query(qSuppressionListSelect, qSuppressionListOrder, int32(limit+1))
	page, err := readAll(ctx, s, q, args, scanSuppression)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing suppressions: %w", unavailable(err))
	}
	page, next := driverkit.SuppressionPage(page, limit)
	return page, next, nil
}
