package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/postie/postie/internal/store"
)

// APIKeyCreate implements store.Store.
func (s *Store) APIKeyCreate(ctx context.Context, k store.APIKey) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		_, err := t.exec(qAPIKeyCreate, k.ID, k.Name, nonNil(k.Hash), k.Prefix, micros(k.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: creating API key %s: %w", k.ID, err)
	}
	return nil
}

// APIKeyByHash implements store.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	st, err := s.rstmt(ctx, qAPIKeyByHash)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("sqlite: %w", err)
	}
	var (
		k       store.APIKey
		created int64
	)
	err = st.QueryRowContext(ctx, nonNil(hash)).Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.APIKey{}, fmt.Errorf("API key: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("sqlite: API key by hash: %w", err)
	}
	k.CreatedAt = fromMicros(created)
	return k, nil
}

// APIKeyCount implements store.Store.
func (s *Store) APIKeyCount(ctx context.Context) (int, error) {
	st, err := s.rstmt(ctx, qAPIKeyCount)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	var n int
	if err := st.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: counting API keys: %w", err)
	}
	return n, nil
}
