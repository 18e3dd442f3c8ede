package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// APIKeyCreate implements store.Store.
func (s *Store) APIKeyCreate(ctx context.Context, k store.APIKey) error {
	scopes, domains, err := driverkit.APIKeyLists(k)
	if err != nil {
		return fmt.Errorf("postgres: creating API key %s: %w", k.ID, err)
	}
	if _, err := s.pool.Exec(ctx, qAPIKeyCreate, k.ID, k.Name, nonNil(k.Hash), k.Prefix, tsNotNull(k.CreatedAt),
		scopes, domains, k.RateLimit, k.Burst, ts(k.LastUsedAt)); err != nil {
		return fmt.Errorf("postgres: creating API key %s: %w", k.ID, unavailable(err))
	}
	return nil
}

// APIKeyByHash implements store.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, qAPIKeyByHash, nonNil(hash)))
	if noRows(err) {
		return store.APIKey{}, fmt.Errorf("API key: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("postgres: API key by hash: %w", unavailable(err))
	}
	return k, nil
}

// APIKeyGet implements store.Store.
func (s *Store) APIKeyGet(ctx context.Context, id string) (store.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, qAPIKeyGet, id))
	if noRows(err) {
		return store.APIKey{}, fmt.Errorf("API key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("postgres: API key %s: %w", id, unavailable(err))
	}
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
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: listing API keys: %w", unavailable(err))
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing API keys: %w", unavailable(err))
	}
	return ks, nil
}

// APIKeyRevoke implements store.Store.
func (s *Store) APIKeyRevoke(ctx context.Context, id string, now time.Time) (store.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, qAPIKeyRevoke, id, tsNotNull(now)))
	if noRows(err) {
		return store.APIKey{}, fmt.Errorf("API key %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("postgres: revoking API key %s: %w", id, unavailable(err))
	}
	return k, nil
}

// APIKeyTouch implements store.Store.
func (s *Store) APIKeyTouch(ctx context.Context, id string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, qAPIKeyTouch, id, tsNotNull(at)); err != nil {
		return fmt.Errorf("postgres: recording the use of API key %s: %w", id, unavailable(err))
	}
	return nil
}

// scanAPIKey scans the columns of the API key queries.
func scanAPIKey(sc scanner) (store.APIKey, error) {
	var (
		k                          store.APIKey
		created, lastUsed, revoked pgtype.Timestamptz
		scopes, domains            []string
	)
	if err := sc.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &created, &scopes, &domains, &k.RateLimit, &k.Burst,
		&lastUsed, &revoked); err != nil {
		return store.APIKey{}, err
	}
	k.CreatedAt = fromTS(created)
	k.LastUsedAt = fromTS(lastUsed)
	k.RevokedAt = fromTS(revoked)
	if len(scopes) > 0 {
		k.Scopes = scopes
	}
	if len(domains) > 0 {
		k.SenderDomains = domains
	}
	return k, nil
}
