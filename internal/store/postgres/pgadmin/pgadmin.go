// Package pgadmin creates and drops scratch PostgreSQL databases (for tests and benchmarks).
package pgadmin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateDatabase creates an empty database named prefix_<random> on the server of serverURL (a
// postgres:// URL whose role may create databases) and returns a URL for it (the same server,
// user and parameters) and a function that drops it, ending any connection still open to it.
// Tests (pgtest) and `postie bench` use it for databases of their own.
func CreateDatabase(ctx context.Context, serverURL, prefix string) (dbURL string, drop func() error, err error) {
	return createDatabase(ctx, serverURL, prefix, "")
}

// CreateDatabaseFrom is CreateDatabase with a copy of the database template (on the same server,
// with no connection open to it) instead of an empty one: tests clone a migrated database
// rather than migrate each of theirs.
func CreateDatabaseFrom(ctx context.Context, serverURL, prefix, template string) (dbURL string, drop func() error, err error) {
	return createDatabase(ctx, serverURL, prefix, template)
}

func createDatabase(ctx context.Context, serverURL, prefix, template string) (dbURL string, drop func() error, err error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("not a postgres:// URL (the password is not shown)")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	admin := func(ctx context.Context, sql string) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	create := "CREATE DATABASE " + name
	if template != "" {
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := admin(ctx, create); err != nil {
		return "", nil, fmt.Errorf("creating database %s on %s: %w", name, u.Redacted(), err)
	}
	drop = func() error {
		// FORCE ends the connections left open (PostgreSQL 13 and later).
		if err := admin(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping database %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
