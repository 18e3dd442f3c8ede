package dbsync

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

// readAll pages through the source from p, size rows a page, and returns the keys read.
func readAll(t *testing.T, r *reader, p position, size int) []int64 {
	t.Helper()
	var keys []int64
	for {
		rows, err := r.page(t.Context(), p, size)
		if err != nil {
			t.Fatalf("page: %v", err)
		}
		for _, rw := range rows {
			keys = append(keys, rw.key.(int64))
		}
		if len(rows) < size {
			return keys
		}
		last := rows[len(rows)-1]
		p = position{Time: last.updatedAt, Key: last.key}
	}
}

// TestReaderPages: rows sharing an updated_at across page boundaries are read once each, in
// (updated_at, key) order; a start without a key includes its time, one with a key excludes it.
func TestReaderPages(t *testing.T) {
	eachDriver(t, func(t *testing.T, a *appDB) {
		same := t0.Add(time.Minute)
		a.put(
			user{id: 7, email: "g@example.com", at: same},
			user{id: 1, email: "a@example.com", at: t0},
			user{id: 5, email: "e@example.com", at: same},
			user{id: 3, email: "c@example.com", at: same},
			user{id: 9, email: "i@example.com", at: same.Add(time.Microsecond)},
			user{id: 4, email: "d@example.com", at: same},
			user{id: 2, email: "b@example.com", at: t0.Add(-time.Hour)},
		)
		r := a.reader(usersMapping)
		if err := r.probe(t.Context()); err != nil {
			t.Fatalf("probe: %v", err)
		}
		want := []int64{2, 1, 3, 4, 5, 7, 9}
		for _, size := range []int{1, 2, 3, 100} {
			if got := readAll(t, r, position{}, size); !slices.Equal(got, want) {
				t.Errorf("pages of %d: keys %v, want %v", size, got, want)
			}
		}
		if got := readAll(t, r, position{Time: same}, 2); !slices.Equal(got, []int64{3, 4, 5, 7, 9}) {
			t.Errorf("from %v inclusive: %v", same, got)
		}
		if got := readAll(t, r, position{Time: same, Key: int64(4)}, 2); !slices.Equal(got, []int64{5, 7, 9}) {
			t.Errorf("after (%v, 4): %v", same, got)
		}
	})
}

// TestReaderUTC: a time written in another zone is read, and compared, in UTC.
func TestReaderUTC(t *testing.T) {
	eachDriver(t, func(t *testing.T, a *appDB) {
		ctx := t.Context()
		conn, err := a.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A session in +03:00 writes 15:00 local: 12:00 UTC.
		if a.driver == store.SourceMySQL {
			a.exec("ALTER TABLE users MODIFY updated_at TIMESTAMP(6) NOT NULL")
			_, err = conn.ExecContext(ctx, "SET time_zone = '+03:00'")
		} else {
			_, err = conn.ExecContext(ctx, "SET TIME ZONE INTERVAL '+03:00' HOUR TO MINUTE")
		}
		if err == nil {
			_, err = conn.ExecContext(ctx, "INSERT INTO users (id, email, updated_at) VALUES (1, 'a@example.com', '2026-03-01 15:00:00')")
		}
		if err != nil {
			t.Fatal(err)
		}
		r := a.reader(usersMapping)
		if err := r.probe(ctx); err != nil {
			t.Fatal(err)
		}
		rows, err := r.page(ctx, position{Time: t0}, 10)
		if err != nil || len(rows) != 1 {
			t.Fatalf("page from 12:00 UTC = %v, %v; want the row", rows, err)
		}
		if !rows[0].updatedAt.Equal(t0) || rows[0].updatedAt.Location() != time.UTC {
			t.Errorf("updated_at = %v, want %v", rows[0].updatedAt, t0)
		}
		if rows, err := r.page(ctx, position{Time: t0.Add(time.Microsecond)}, 10); err != nil || len(rows) != 0 {
			t.Errorf("page after 12:00 UTC = %v, %v; want none", rows, err)
		}
	})
}

// TestReaderMissingColumns: a SELECT that does not return a mapped column is a mapping error
// naming it (and what the SELECT returns); mapping names match the columns in any case.
func TestReaderMissingColumns(t *testing.T) {
	eachDriver(t, func(t *testing.T, a *appDB) {
		m := usersMapping
		m.Email, m.Locale, m.Attributes = "EMAIL", "lang", []string{"plan", "score"}
		r := a.reader(m)
		err := r.probe(t.Context())
		var me *mappingError
		if !errors.As(err, &me) {
			t.Fatalf("probe = %v, want a mapping error", err)
		}
		msg := err.Error()
		for _, s := range []string{"lang (locale)", "score (attribute)", "it returns id, email"} {
			if !strings.Contains(msg, s) {
				t.Errorf("error %q does not say %q", msg, s)
			}
		}
		if strings.Contains(msg, "EMAIL") || strings.Contains(msg, "plan (") {
			t.Errorf("error %q names a column that is there", msg)
		}
	})
}

// TestMapRow: the row's columns become the contact's fields and attributes; opted-out rows
// unsubscribe and subscribe to nothing; deleted rows need no valid email.
func TestMapRow(t *testing.T) {
	t.Parallel()
	r := &reader{mapping: usersMapping, cols: []string{"id", "email", "full_name", "plan", "opted_out", "deleted_at", "updated_at", "seen"}}
	r.col = map[string]string{"email": "email", "external_id": "id", "name": "full_name", "updated_at": "updated_at",
		"key": "id", "opt_out": "opted_out", "deleted": "deleted_at"}
	base := func(mod func(map[string]any)) row {
		v := map[string]any{"id": int64(42), "email": " Ann@Example.COM ", "full_name": "Ann", "plan": "pro",
			"opted_out": false, "deleted_at": nil, "updated_at": t0, "seen": t0.Add(time.Hour)}
		if mod != nil {
			mod(v)
		}
		return row{values: v, updatedAt: t0, key: v["id"]}
	}
	name := "Ann"
	for _, tc := range []struct {
		name string
		row  row
		want mapped
	}{
		{name: "fields and attributes", row: base(nil), want: mapped{key: "42", upsert: store.ContactUpsert{
			Email: "Ann@Example.COM", ExternalID: "42", Name: &name,
			Attributes: json.RawMessage(`{"plan":"pro","seen":"2026-03-01T13:00:00Z"}`),
			Lists:      []string{"lst_a"}, Consent: store.Consent{Source: "sync"}}}},
		{name: "opted out", row: base(func(v map[string]any) { v["opted_out"] = int64(1); v["plan"] = nil }), want: mapped{key: "42",
			upsert: store.ContactUpsert{Email: "Ann@Example.COM", ExternalID: "42", Name: &name,
				Attributes: json.RawMessage(`{"plan":null,"seen":"2026-03-01T13:00:00Z"}`), UnsubscribeAll: true,
				Consent: store.Consent{Source: "sync"}}}},
		{name: "deleted", row: base(func(v map[string]any) { v["deleted_at"] = t0; v["email"] = "not an address" }),
			want: mapped{key: "42", deleted: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.mapRow(tc.row, []string{"lst_a"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(mapped{})); diff != "" {
				t.Errorf("mapRow (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTruthy: what opt-out and deleted columns count as set.
func TestTruthy(t *testing.T) {
	t.Parallel()
	for v, want := range map[any]bool{true: true, false: false, int64(1): true, int64(0): false, "yes": true, "TRUE": true,
		"0": false, "": false, "no": false, t0: true, nil: false, 2.5: true} {
		if got := truthy(v); got != want {
			t.Errorf("truthy(%#v) = %v, want %v", v, got, want)
		}
	}
}

// TestCheckQuery and TestCheckDSN: what a source's SELECT and DSN must look like; a DSN's
// error never quotes it.
func TestCheckQuery(t *testing.T) {
	t.Parallel()
	for q, ok := range map[string]bool{"SELECT 1": true, " with x as (select 1) select * from x;": true,
		"DELETE FROM users": false, "SELECT 1; DROP TABLE users": false, "": false} {
		if err := CheckQuery(q); (err == nil) != ok {
			t.Errorf("CheckQuery(%q) = %v", q, err)
		}
	}
	for _, tc := range []struct{ driver, dsn string }{
		{store.SourceMySQL, "reader:s3cret@tcp(db:3306"}, {store.SourcePostgres, "postgres://reader:s3cret@db:99999999/app"},
	} {
		err := CheckDSN(tc.driver, tc.dsn)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckDSN(%s) = %v; want an error without the password", tc.driver, err)
		}
	}
	if err := CheckDSN(store.SourceMySQL, "reader:s3cret@tcp(db:3306)/app"); err != nil {
		t.Errorf("CheckDSN(good): %v", err)
	}
}
