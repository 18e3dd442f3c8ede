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
	k, err := readOne(ctx, s, qAPIKeyByHash, []any{nonNil(hash)}, scanAPIKey)
	if errors.Is(err, sql.ErrNoRows) {
		return store.APIKey{}, fmt.Errorf("API key: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("sqlite: API key by hash: %w", err)
	}
	return k, nil
}

// APIKeyCount implements store.Store.
func (s *Store) APIKeyCount(ctx context.Context) (int, error) {
	n, err := readOne(ctx, s, qAPIKeyCount, nil, scanValue[int])
	if err != nil {
		return 0, fmt.Errorf("sqlite: counting API keys: %w", err)
	}
	return n, nil
}

// APIKeyList implements store.Store.
func (s *Store) APIKeyList(ctx context.Context) ([]store.APIKey, error) {
	ks, err := readAll(ctx, s, qAPIKeyList, nil, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing API keys: %w", err)
	}
	return ks, nil
}

// APIKeyDelete implements store.Store.
func (s *Store) APIKeyDelete(ctx context.Context, id string) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qAPIKeyDelete, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("API key %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("sqlite: deleting API key %s: %w", id, err)
	}
	return err
}

// scanAPIKey scans the columns of qAPIKeyByHash and qAPIKeyList.
func scanAPIKey(sc scanner) (store.APIKey, error) {
	var (
		k       store.APIKey
		created int64
	)
	if err := sc.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &created); err != nil {
		return store.APIKey{}, err
	}
	k.CreatedAt = fromMicros(created)
	return k, nil
}
