package postgres

import (
	"context"
	"fmt"
	"time"
)

// Secrets (store/secrets.go). Two statements, not one: a concurrent insert of the same name
// makes ours do nothing once it commits, and only a new statement's snapshot (READ COMMITTED)
// sees the row it stored.
const (
	qSecretInsert = `INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`
	qSecretGet = `SELECT value FROM secrets WHERE name = $1`
)

// SecretGetOrCreate implements store.Store.
func (s *Store) SecretGetOrCreate(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error) {
	if _, err := s.pool.Exec(ctx, qSecretInsert, name, nonNil(value), tsNotNull(now)); err != nil {
		return nil, fmt.Errorf("postgres: secret %s: %w", name, unavailable(err))
	}
	var stored []byte
	if err := s.pool.QueryRow(ctx, qSecretGet, name).Scan(&stored); err != nil {
		return nil, fmt.Errorf("postgres: secret %s: %w", name, unavailable(err))
	}
	return stored, nil
}
