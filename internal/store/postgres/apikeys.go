package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
)

// APIKeyCreate implements store.Store.
func (s *Store) APIKeyCreate(ctx context.Context, k store.APIKey) error {
	if _, err := s.pool.Exec(ctx, qAPIKeyCreate, k.ID, k.Name, nonNil(k.Hash), k.Prefix, tsNotNull(k.CreatedAt)); err != nil {
		return fmt.Errorf("postgres: creating API key %s: %w", k.ID, unavailable(err))
	}
	return nil
}

// APIKeyByHash implements store.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	var (
		k       store.APIKey
		created pgtype.Timestamptz
	)
	err := s.pool.QueryRow(ctx, qAPIKeyByHash, nonNil(hash)).Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &created)
	if noRows(err) {
		return store.APIKey{}, fmt.Errorf("API key: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("postgres: API key by hash: %w", unavailable(err))
	}
	k.CreatedAt = fromTS(created)
	return k, nil
}

// APIKeyCount implements store.Store.
func (s *Store) APIKeyCount(ctx context.Context) (int, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, qAPIKeyCount).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: counting API keys: %w", unavailable(err))
	}
	return int(n), nil
}

// APIKeyList implements store.Store.
func (s *Store) APIKeyList(ctx context.Context) ([]store.APIKey, error) {
	rows, err := s.pool.Query(ctx, qAPIKeyList)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing API keys: %w", unavailable(err))
	}
	defer rows.Close()
	var ks []store.APIKey
	for rows.Next() {
		var (
			k       store.APIKey
			created pgtype.Timestamptz
		)
		if err := rows.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &created); err != nil {
			return nil, fmt.Errorf("postgres: listing API keys: %w", unavailable(err))
		}
		k.CreatedAt = fromTS(created)
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing API keys: %w", unavailable(err))
	}
	return ks, nil
}

// APIKeyDelete implements store.Store.
func (s *Store) APIKeyDelete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, qAPIKeyDelete, id)
	if err != nil {
		return fmt.Errorf("postgres: deleting API key %s: %w", id, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("API key %s: %w", id, store.ErrNotFound)
	}
	return nil
}
