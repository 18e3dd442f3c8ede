package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// suppressionArgs returns the values of suppressionColumns for s, which driverkit.CheckSuppression
// passed.
func suppressionArgs(s store.Suppression) []any {
	return []any{s.Email, cmp.Or(s.Scope, store.ScopeGlobal), s.Reason, s.Detail, s.MessageID, micros(s.CreatedAt), nullMicros(s.ExpiresAt)}
}

// scanSuppression reads one row of suppressionColumns.
func scanSuppression(sc scanner) (store.Suppression, error) {
	var (
		s                store.Suppression
		created, expires sql.NullInt64
	)
	if err := sc.Scan(&s.Email, &s.Scope, &s.Reason, &s.Detail, &s.MessageID, &created, &expires); err != nil {
		return store.Suppression{}, err
	}
	s.CreatedAt = fromMicros(created.Int64)
	s.ExpiresAt = fromMicros(expires.Int64)
	return s, nil
}

// SuppressionUpsert implements store.Store. Every suppression needs an Email, a Reason and a
// CreatedAt; all are written in one transaction.
func (s *Store) SuppressionUpsert(ctx context.Context, sups []store.Suppression) error {
	rows := make([][]any, len(sups))
	for i, sup := range sups {
		sup, err := driverkit.CheckSuppression(sup)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		rows[i] = suppressionArgs(sup)
	}
	if len(rows) == 0 {
		return nil
	}
	err := s.w.do(ctx, len(rows), func(t *wtx) error {
		for _, args := range rows {
			if _, err := t.exec(qSuppressionUpsert, args...); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: adding suppressions: %w", err)
	}
	return nil
}

// SuppressionGet implements store.Store.
func (s *Store) SuppressionGet(ctx context.Context, email, scope string, now time.Time) (store.Suppression, error) {
	email = driverkit.SuppressionKey(email)
	scope = cmp.Or(scope, store.ScopeGlobal)
	sup, err := readOne(ctx, s, qSuppressionGet, []any{email, micros(now), scope}, scanSuppression)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Suppression{}, fmt.Errorf("suppression of %s: %w", email, store.ErrNotFound)
	}
	if err != nil {
		return store.Suppression{}, fmt.Errorf("sqlite: suppression of %s: %w", email, err)
	}
	return sup, nil
}

// SuppressionDelete implements store.Store. Expired suppressions are deleted too.
func (s *Store) SuppressionDelete(ctx context.Context, email, scope string) error {
	email = driverkit.SuppressionKey(email)
	scope = cmp.Or(scope, store.ScopeGlobal)
	var n int64
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qSuppressionDelete, email, scope)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: deleting the suppression of %s: %w", email, err)
	}
	if n == 0 {
		return fmt.Errorf("suppression of %s: %w", email, store.ErrNotFound)
	}
	return nil
}

// SuppressionMatch implements store.Store: one query on the read pool, one primary-key probe per
// distinct address and scope.
func (s *Store) SuppressionMatch(ctx context.Context, emails, scopes []string, now time.Time) (map[string][]store.Suppression, error) {
	out := map[string][]store.Suppression{}
	lower := driverkit.LowerDistinct(emails)
	if len(lower) == 0 {
		return out, nil
	}
	arr, err := json.Marshal(lower)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	scs, err := json.Marshal(driverkit.SuppressionScopes(scopes))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	sups, err := readAll(ctx, s, qSuppressionMatch, []any{string(arr), micros(now), string(scs)}, scanSuppression)
	if err != nil {
		return nil, fmt.Errorf("sqlite: matching suppressions: %w", err)
	}
	for _, sup := range sups {
		out[sup.Email] = append(out[sup.Email], sup)
	}
	return out, nil
}

// SuppressionList implements store.Store. The cursor is the (created_at, email) of the page's
// last row, base64url-encoded.
func (s *Store) SuppressionList(ctx context.Context, p store.SuppressionListParams) ([]store.Suppression, string, error) {
	q, args, err := suppressionListQuery(p)
	if err != nil {
		return nil, "", err
	}
	page, err := readAll(ctx, s, q, args, scanSuppression)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing suppressions: %w", err)
	}
	page, next := driverkit.SuppressionPage(page, driverkit.ListLimit(p.Limit))
	return page, next, nil
}

// suppressionListQuery assembles the SuppressionList statement from the pieces in queries.go. It
// asks for one row more than the page, which tells whether there is a next page.
func suppressionListQuery(p store.SuppressionListParams) (string, []any, error) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if p.Reason != "" {
		add(qSuppressionListReason, p.Reason)
	}
	if p.Scope != "" {
		add(qSuppressionListScope, p.Scope)
	}
	if p.Email != "" {
		add(qSuppressionListEmail, driverkit.SuppressionKey(p.Email))
	}
	if !p.Now.IsZero() {
		add(qSuppressionListActive, micros(p.Now))
	}
	if p.Cursor != "" {
		created, email, scope, err := store.SuppressionCursorAfter(p.Cursor)
		if err != nil {
			return "", nil, err
		}
		add(qSuppressionListCursor, micros(created), email, scope)
	}
	args = append(args, int64(driverkit.ListLimit(p.Limit)+1))
	q := qSuppressionListSelect
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q + qSuppressionListOrder, args, nil
}
