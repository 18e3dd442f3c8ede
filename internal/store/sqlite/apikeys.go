package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// APIKeyCreate implements store.Store.
func (s *Store) APIKeyCreate(ctx context.Context, k store.APIKey) error {
	scopes, domains, err := driverkit.APIKeyLists(k)
	if err != nil {
		return fmt.Errorf("sqlite: creating API key %s: %w", k.ID, err)
	}
	err = s.w.do(ctx, 1, func(t *wtx) error {
		_, err := t.exec(qAPIKeyCreate, k.ID, k.Name, nonNil(k.Hash), k.Prefix, micros(k.CreatedAt),
			scopes, domains, k.RateLimit, k.Burst, nullMicros(k.LastUsedAt))
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

// APIKeyGet implements store.Store.
func (s *Store) APIKeyGet(ctx context.Context, id string) (store.APIKey, error) {
	k, err := readOne(ctx, s, qAPIKeyGet, []any{id}, scanAPIKey)
	if errors.Is(err, sql.ErrNoRows) {
		return store.APIKey{}, fmt.Errorf("API key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("sqlite: API key %s: %w", id, err)
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

// APIKeyRevoke implements store.Store.
func (s *Store) APIKeyRevoke(ctx context.Context, id string, now time.Time) (store.APIKey, error) {
	var k store.APIKey
	err := s.w.do(ctx, 1, func(t *wtx) error {
		rows, err := t.query(qAPIKeyRevoke, id, micros(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return err
			}
			return fmt.Errorf("API key %s: %w", id, store.ErrNotFound)
		}
		if k, err = scanAPIKey(rows); err != nil {
			return err
		}
		return rows.Close()
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, fmt.Errorf("sqlite: revoking API key %s: %w", id, err)
	}
	return k, err
}

// APIKeyTouch implements store.Store.
func (s *Store) APIKeyTouch(ctx context.Context, id string, at time.Time) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		_, err := t.exec(qAPIKeyTouch, id, micros(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: recording the use of API key %s: %w", id, err)
	}
	return nil
}

// scanAPIKey scans the columns of the API key queries.
func scanAPIKey(sc scanner) (store.APIKey, error) {
	var (
		k                 store.APIKey
		created           int64
		scopes, domains   string
		lastUsed, revoked sql.NullInt64
	)
	if err := sc.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &created, &scopes, &domains, &k.RateLimit, &k.Burst,
		&lastUsed, &revoked); err != nil {
		return store.APIKey{}, err
	}
	k.CreatedAt = fromMicros(created)
	k.LastUsedAt = fromMicros(lastUsed.Int64)
	k.RevokedAt = fromMicros(revoked.Int64)
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return store.APIKey{}, fmt.Errorf("scopes: %w", err)
	}
	if err := json.Unmarshal([]byte(domains), &k.SenderDomains); err != nil {
		return store.APIKey{}, fmt.Errorf("sender_domains: %w", err)
	}
	if len(k.SenderDomains) == 0 {
		k.SenderDomains = nil
	}
	if len(k.Scopes) == 0 {
		k.Scopes = nil
	}
	return k, nil
}
