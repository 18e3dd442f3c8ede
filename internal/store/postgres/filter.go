package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// dialect is PostgreSQL's side of driverkit.FilterWhere. Attribute values are read with
// jsonb_typeof, -> and ->> from the attributes jsonb column; the attribute name, checked by
// store.AttributeNameValid (letters, digits, underscore), is written as a quoted literal, not
// bound, because an index on an expression is matched to a query only when the expressions are
// the same, literals included. Strings compare byte by byte (COLLATE "C"), as SQLite's do.
type dialect struct{}

func (dialect) Placeholder(n int) string { return fmt.Sprintf("$%d", n) }

// Field qualifies the column: subscriptions, joined for list memberships, has some of the same
// names.
func (dialect) Field(name string) string {
	switch name {
	case "email":
		return "contacts.email_key"
	case "name", "locale", "timezone":
		return "(contacts." + name + ` COLLATE "C")`
	}
	return "contacts." + name
}

func (dialect) Attr(name, typ string) string {
	key := "'" + name + "'"
	jt := "jsonb_typeof(attributes -> " + key + ")"
	switch typ {
	case store.AttrString:
		return "((CASE WHEN " + jt + " = 'string' THEN attributes ->> " + key + ` END) COLLATE "C")`
	case store.AttrNumber:
		return "(CASE WHEN " + jt + " = 'number' THEN (attributes ->> " + key + ")::float8 END)"
	case store.AttrBool:
		return "(CASE WHEN " + jt + " = 'boolean' THEN (attributes ->> " + key + ")::boolean END)"
	}
	return "postie_time_ms(attributes -> " + key + ")" // 00009
}

func (dialect) Value(typ string, attr bool, v any) any {
	if t, ok := v.(time.Time); ok {
		if attr {
			return t.UnixMilli()
		}
		return t
	}
	return v
}

func (dialect) Contains(x, p string) string   { return "strpos(" + x + ", " + p + ") > 0" }
func (dialect) StartsWith(x, p string) string { return "starts_with(" + x + ", " + p + ")" }

// ListsJoin: PostgreSQL hash-joins a LEFT JOIN once, where it would probe an EXISTS under or/not
// for each contact and scan the members of a large list for each contact of a NOT IN.
func (dialect) ListsJoin() bool { return true }

// isUnique tells whether err is a unique_violation.
func isUnique(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// AttributeDeclare implements store.Segments: the row and the index on the attribute's typed
// value in one transaction. Building the index reads every contact and blocks writes to
// contacts meanwhile. Two nodes declaring at once: the second waits on the first's row and then
// finds it.
func (s *Store) AttributeDeclare(ctx context.Context, a store.Attribute) (store.Attribute, error) {
	if err := driverkit.CheckAttribute(a); err != nil {
		return store.Attribute{}, fmt.Errorf("postgres: %w", err)
	}
	out := a
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, qAttributeInsert, a.Name, a.Type, ts(a.CreatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var created pgtype.Timestamptz
			if err := tx.QueryRow(ctx, qAttributeGet, a.Name).Scan(&out.Type, &created); err != nil {
				return err
			}
			out.CreatedAt = fromTS(created)
			if out.Type != a.Type {
				return fmt.Errorf("attribute %s is declared as %s, not %s: %w", a.Name, out.Type, a.Type, store.ErrConflict)
			}
			return nil
		}
		// Building the index reads every contact: it may take longer than the statement
		// timeout meant for the statements of requests.
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `CREATE INDEX IF NOT EXISTS "`+driverkit.AttrIndexName(a.Name)+`" ON contacts (`+
			dialect{}.Attr(a.Name, a.Type)+`, id)`, s.filterMode())
		if err != nil {
			return err
		}
		// The planner's statistics of the new expression: without them it guesses how many
		// contacts a condition on the attribute matches (a third for a range), and reads every
		// contact rather than the index until autovacuum next analyzes the table.
		_, err = tx.Exec(ctx, `ANALYZE contacts`)
		return err
	})
	if err != nil {
		return store.Attribute{}, fmt.Errorf("postgres: declaring attribute %s: %w", a.Name, unavailable(err))
	}
	return out, nil
}

// AttributeList implements store.Segments.
func (s *Store) AttributeList(ctx context.Context) ([]store.Attribute, error) {
	rows, _ := s.pool.Query(ctx, qAttributeList)
	as, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Attribute, error) {
		var (
			a       store.Attribute
			created pgtype.Timestamptz
		)
		err := row.Scan(&a.Name, &a.Type, &created)
		a.CreatedAt = fromTS(created)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: listing attributes: %w", unavailable(err))
	}
	return as, nil
}

// AttributeDelete implements store.Segments.
func (s *Store) AttributeDelete(ctx context.Context, name string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, qAttributeDelete, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 || !store.AttributeNameValid(name) {
			return fmt.Errorf("attribute %s: %w", name, store.ErrNotFound)
		}
		_, err = tx.Exec(ctx, `DROP INDEX IF EXISTS "`+driverkit.AttrIndexName(name)+`"`, s.filterMode())
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: deleting attribute %s: %w", name, unavailable(err))
	}
	return nil
}

func scanSegment(sc scanner) (store.Segment, error) {
	var (
		seg              store.Segment
		created, updated pgtype.Timestamptz
	)
	if err := sc.Scan(&seg.ID, &seg.Name, &seg.Filter, &created, &updated); err != nil {
		return store.Segment{}, err
	}
	seg.CreatedAt, seg.UpdatedAt = fromTS(created), fromTS(updated)
	return seg, nil
}

// segmentError translates the errors of a segment's write.
func segmentError(err error, what, id, name string) error {
	switch {
	case isUnique(err):
		return fmt.Errorf("segment name %q is taken: %w", name, store.ErrConflict)
	case noRows(err):
		return fmt.Errorf("segment %s: %w", id, store.ErrNotFound)
	}
	return fmt.Errorf("postgres: %s segment %s: %w", what, id, unavailable(err))
}

// SegmentCreate implements store.Segments.
func (s *Store) SegmentCreate(ctx context.Context, seg store.Segment) (store.Segment, error) {
	_, err := s.pool.Exec(ctx, qSegmentInsert, seg.ID, seg.Name, string(seg.Filter), ts(seg.CreatedAt), ts(seg.UpdatedAt))
	if err != nil {
		return store.Segment{}, segmentError(err, "creating", seg.ID, seg.Name)
	}
	return seg, nil
}

// SegmentGet implements store.Segments.
func (s *Store) SegmentGet(ctx context.Context, id string) (store.Segment, error) {
	seg, err := scanSegment(s.pool.QueryRow(ctx, qSegmentGet, id))
	if err != nil {
		return store.Segment{}, segmentError(err, "reading", id, "")
	}
	return seg, nil
}

// SegmentList implements store.Segments.
func (s *Store) SegmentList(ctx context.Context) ([]store.Segment, error) {
	rows, _ := s.pool.Query(ctx, qSegmentList)
	segs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Segment, error) { return scanSegment(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: listing segments: %w", unavailable(err))
	}
	return segs, nil
}

// SegmentUpdate implements store.Segments.
func (s *Store) SegmentUpdate(ctx context.Context, seg store.Segment) (store.Segment, error) {
	out, err := scanSegment(s.pool.QueryRow(ctx, qSegmentUpdate, seg.ID, seg.Name, string(seg.Filter), ts(seg.UpdatedAt)))
	if err != nil {
		return store.Segment{}, segmentError(err, "updating", seg.ID, seg.Name)
	}
	return out, nil
}

// SegmentDelete implements store.Segments.
func (s *Store) SegmentDelete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, qSegmentDelete, id)
	if err != nil {
		return segmentError(err, "deleting", id, "")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("segment %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// SegmentCount implements store.Segments. A filter's statement differs with every filter: it
// runs unprepared (filterMode), not kept in the connection's statement cache, and is planned
// with its values.
func (s *Store) SegmentCount(ctx context.Context, f *store.Filter, now time.Time) (int, error) {
	q, err := driverkit.FilterWhere(dialect{}, f, now, 1)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	var n int64
	err = s.pool.QueryRow(ctx, "SELECT count(*) FROM contacts"+q.Joins+" WHERE "+q.Where, append([]any{s.filterMode()}, q.Args...)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: counting a segment: %w", unavailable(err))
	}
	return int(n), nil
}

// SegmentContacts implements store.Segments, unprepared as SegmentCount.
func (s *Store) SegmentContacts(ctx context.Context, p store.SegmentContactsParams) ([]store.Contact, string, error) {
	after, err := store.ContactCursorAfter(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	q, err := driverkit.FilterWhere(dialect{}, p.Filter, p.Now, 1)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: %w", err)
	}
	limit := driverkit.ListLimit(p.Limit)
	n := len(q.Args)
	sql := fmt.Sprintf("%s%s WHERE (%s) AND contacts.id > $%d ORDER BY contacts.id LIMIT $%d", qSegmentContactsSelect, q.Joins, q.Where, n+1, n+2)
	args := append(append([]any{s.filterMode()}, q.Args...), after, int64(limit+1))
	rows, _ := s.pool.Query(ctx, sql, args...)
	page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Contact, error) { return scanSegmentContact(row) })
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing a segment's contacts: %w", unavailable(err))
	}
	page, next := driverkit.ContactPage(page, limit)
	return page, next, nil
}

// filterMode is the query mode of a filter's statement: the connection's, unless that keeps
// statements in its cache, where one-off statements would push out the ones used all the time.
func (s *Store) filterMode() pgx.QueryExecMode {
	switch m := s.conn.DefaultQueryExecMode; m {
	case pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe:
		return pgx.QueryExecModeExec
	default:
		return m
	}
}

// scanSegmentContact reads one row of qSegmentContactsSelect.
func scanSegmentContact(sc scanner) (store.Contact, error) {
	var (
		c                        store.Contact
		ext                      pgtype.Text
		active, created, updated pgtype.Timestamptz
	)
	if err := sc.Scan(&c.ID, &c.Email, &c.EmailKey, &ext, &c.Name, &c.Locale, &c.Timezone, &c.Attributes, &active,
		&created, &updated); err != nil {
		return store.Contact{}, err
	}
	c.ExternalID = ext.String
	c.LastActiveAt, c.CreatedAt, c.UpdatedAt = fromTS(active), fromTS(created), fromTS(updated)
	return c, nil
}
