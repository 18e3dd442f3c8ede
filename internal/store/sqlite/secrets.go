package sqlite

import (
	"context"
	"fmt"
	"time"
)

// Secrets (store/secrets.go): insert if absent, then read what is stored, in one write
// transaction on the one writer, so the value read is the one kept.
const (
	qSecretInsert = `INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`
	qSecretGet = `SELECT value FROM secrets WHERE name = ?`
)

// SecretGetOrCreate implements store.Store.
func (s *Store) SecretGetOrCreate(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error) {
	var stored []byte
	err := s.w.do(ctx, 1, func(t *wtx) error {
		if _, err := t.exec(qSecretInsert, name, nonNil(value), micros(now)); err != nil {
			return err
		}
		return t.queryRow(qSecretGet, []any{name}, &stored)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: secret %s: %w", name, err)
	}
	return stored, nil
}
