package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// dialect is SQLite's side of driverkit.FilterWhere. Attribute values are read with json_type
// and ->> from the attributes TEXT column; the attribute name, checked by
// store.AttributeNameValid (letters, digits, underscore), is written into the JSON path as a
// quoted key, not bound, because an index on an expression is matched to a query only when the
// expressions are the same, literals included.
type dialect struct{}

// Placeholder is numbered (?NNN): StartsWith uses its parameter twice.
func (dialect) Placeholder(n int) string { return "?" + strconv.Itoa(n) }

func (dialect) Field(name string) string {
	if name == "email" {
		return "email_key"
	}
	return name
}

func (dialect) Attr(name, typ string) string {
	path := `'$."` + name + `"'`
	v := "attributes ->> " + path
	jt := "json_type(attributes, " + path + ")"
	switch typ {
	case store.AttrString:
		return "(CASE WHEN " + jt + " = 'text' THEN " + v + " END)"
	case store.AttrNumber:
		return "(CASE WHEN " + jt + " IN ('integer', 'real') THEN " + v + " END)"
	case store.AttrBool:
		return "(CASE " + jt + " WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
	}
	// AttrTime: milliseconds since the epoch of an RFC 3339 string with a zone, as
	// PostgreSQL's postie_time_ms (00009) reads it; date() of an impossible day (February
	// 30th) is another day, which tells it apart, and SQLite itself refuses minutes and
	// seconds past 59 and zones past ±14:00, but takes hour 24.
	return "(CASE WHEN " + jt + " = 'text'" +
		" AND " + v + " GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'" +
		" AND substr(" + v + ", 12, 2) < '24'" +
		" AND (" + v + " GLOB '*Z' OR " + v + " GLOB '*[+-][0-9][0-9]:[0-9][0-9]')" +
		" AND date(substr(" + v + ", 1, 10)) = substr(" + v + ", 1, 10)" +
		" THEN CAST(round(unixepoch(" + v + ", 'subsec') * 1000) AS INTEGER) END)"
}

func (dialect) Value(typ string, attr bool, v any) any {
	switch v := v.(type) {
	case bool:
		if v {
			return int64(1)
		}
		return int64(0)
	case time.Time:
		if attr {
			return v.UnixMilli()
		}
		return v.UnixMicro()
	}
	return v
}

// Contains and StartsWith: instr and substr, not LIKE, which is case-insensitive and has
// wildcards.
func (dialect) Contains(x, p string) string { return "instr(" + x + ", " + p + ") > 0" }
func (dialect) StartsWith(x, p string) string {
	return "substr(" + x + ", 1, length(" + p + ")) = " + p
}

// ListsJoin: SQLite reads an IN's members once into a temporary index.
func (dialect) ListsJoin() bool { return false }

// AttributeDeclare implements store.Segments: the row and the index on the attribute's typed
// value in one transaction. Building the index reads every contact and holds the writer
// meanwhile.
func (s *Store) AttributeDeclare(ctx context.Context, a store.Attribute) (store.Attribute, error) {
	if err := driverkit.CheckAttribute(a); err != nil {
		return store.Attribute{}, fmt.Errorf("sqlite: %w", err)
	}
	var out store.Attribute
	err := s.w.do(ctx, 1, func(t *wtx) error {
		var (
			typ     string
			created int64
		)
		err := t.queryRow(qAttributeGet, []any{a.Name}, &typ, &created)
		switch {
		case err == nil && typ == a.Type:
			out = store.Attribute{Name: a.Name, Type: typ, CreatedAt: fromMicros(created)}
			return nil
		case err == nil:
			return fmt.Errorf("attribute %s is declared as %s, not %s: %w", a.Name, typ, a.Type, store.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := t.exec(qAttributeInsert, a.Name, a.Type, micros(a.CreatedAt)); err != nil {
			return err
		}
		// DDL is run once, not kept prepared like the other statements.
		ddl := `CREATE INDEX IF NOT EXISTS "` + driverkit.AttrIndexName(a.Name) + `" ON contacts (` +
			dialect{}.Attr(a.Name, a.Type) + `, id)`
		if _, err := t.w.conn.ExecContext(context.Background(), ddl); err != nil {
			return err
		}
		out = a
		return nil
	})
	if err != nil {
		return store.Attribute{}, fmt.Errorf("sqlite: declaring attribute %s: %w", a.Name, err)
	}
	return out, nil
}

// execOne runs q, which changes the row named by what, or fails with ErrNotFound when none.
func execOne(t *wtx, what, q string, args ...any) error {
	res, err := t.exec(q, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// AttributeList implements store.Segments.
func (s *Store) AttributeList(ctx context.Context) ([]store.Attribute, error) {
	as, err := readAll(ctx, s, qAttributeList, nil, func(sc scanner) (store.Attribute, error) {
		var (
			a       store.Attribute
			created int64
		)
		err := sc.Scan(&a.Name, &a.Type, &created)
		a.CreatedAt = fromMicros(created)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing attributes: %w", err)
	}
	return as, nil
}

// AttributeDelete implements store.Segments.
func (s *Store) AttributeDelete(ctx context.Context, name string) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		if err := execOne(t, "attribute "+name, qAttributeDelete, name); err != nil {
			return err
		}
		_, err := t.w.conn.ExecContext(context.Background(), `DROP INDEX IF EXISTS "`+driverkit.AttrIndexName(name)+`"`)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: deleting attribute %s: %w", name, err)
	}
	return nil
}

func scanSegment(sc scanner) (store.Segment, error) {
	var (
		seg              store.Segment
		filter           string
		created, updated int64
	)
	if err := sc.Scan(&seg.ID, &seg.Name, &filter, &created, &updated); err != nil {
		return store.Segment{}, err
	}
	seg.Filter = json.RawMessage(filter)
	seg.CreatedAt, seg.UpdatedAt = fromMicros(created), fromMicros(updated)
	return seg, nil
}

// SegmentCreate implements store.Segments.
func (s *Store) SegmentCreate(ctx context.Context, seg store.Segment) (store.Segment, error) {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		if err := segmentNameFree(t, seg); err != nil {
			return err
		}
		_, err := t.exec(qSegmentInsert, seg.ID, seg.Name, string(seg.Filter), micros(seg.CreatedAt), micros(seg.UpdatedAt))
		return err
	})
	if err != nil {
		return store.Segment{}, fmt.Errorf("sqlite: creating segment %s: %w", seg.ID, err)
	}
	return seg, nil
}

// segmentNameFree returns ErrConflict when another segment than seg has its name.
func segmentNameFree(t *wtx, seg store.Segment) error {
	var other string
	err := t.queryRow(qSegmentByName, []any{seg.Name}, &other)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && other == seg.ID):
		return nil
	case err == nil:
		return fmt.Errorf("segment name %q is taken by %s: %w", seg.Name, other, store.ErrConflict)
	}
	return err
}

// SegmentGet implements store.Segments.
func (s *Store) SegmentGet(ctx context.Context, id string) (store.Segment, error) {
	seg, err := readOne(ctx, s, qSegmentGet, []any{id}, scanSegment)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Segment{}, fmt.Errorf("segment %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Segment{}, fmt.Errorf("sqlite: segment %s: %w", id, err)
	}
	return seg, nil
}

// SegmentList implements store.Segments.
func (s *Store) SegmentList(ctx context.Context) ([]store.Segment, error) {
	segs, err := readAll(ctx, s, qSegmentList, nil, scanSegment)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing segments: %w", err)
	}
	return segs, nil
}

// SegmentUpdate implements store.Segments.
func (s *Store) SegmentUpdate(ctx context.Context, seg store.Segment) (store.Segment, error) {
	var out store.Segment
	err := s.w.do(ctx, 1, func(t *wtx) error {
		if err := segmentNameFree(t, seg); err != nil {
			return err
		}
		if err := execOne(t, "segment "+seg.ID, qSegmentUpdate, seg.ID, seg.Name, string(seg.Filter), micros(seg.UpdatedAt)); err != nil {
			return err
		}
		rows, err := t.query(qSegmentGet, seg.ID)
		if err != nil {
			return err
		}
		out, err = scanFirst(rows, scanSegment) // the row execOne just found
		return err
	})
	if err != nil {
		return store.Segment{}, fmt.Errorf("sqlite: updating segment %s: %w", seg.ID, err)
	}
	return out, nil
}

// SegmentDelete implements store.Segments.
func (s *Store) SegmentDelete(ctx context.Context, id string) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		return execOne(t, "segment "+id, qSegmentDelete, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: deleting segment %s: %w", id, err)
	}
	return nil
}

// SegmentCount implements store.Segments, on the read pool.
func (s *Store) SegmentCount(ctx context.Context, f *store.Filter, now time.Time) (int, error) {
	q, err := driverkit.FilterWhere(dialect{}, f, now, 1)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	var n int
	err = s.readFilter(ctx, "SELECT count(*) FROM contacts"+q.Joins+" WHERE "+q.Where, q.Args, func(rows *sql.Rows) error {
		if !rows.Next() {
			return rows.Err()
		}
		return rows.Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: counting a segment: %w", err)
	}
	return n, nil
}

// SegmentContacts implements store.Segments, on the read pool.
func (s *Store) SegmentContacts(ctx context.Context, p store.SegmentContactsParams) ([]store.Contact, string, error) {
	after, err := store.ContactCursorAfter(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	q, err := driverkit.FilterWhere(dialect{}, p.Filter, p.Now, 1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: %w", err)
	}
	limit := driverkit.ListLimit(p.Limit)
	args := append(q.Args, after, int64(limit+1))
	var page []store.Contact
	err = s.readFilter(ctx, qSegmentContactsSelect+q.Joins+" WHERE ("+q.Where+") AND id > ? ORDER BY id LIMIT ?", args,
		func(rows *sql.Rows) error {
			for rows.Next() {
				c, err := scanSegmentContact(rows)
				if err != nil {
					return err
				}
				page = append(page, c)
			}
			return rows.Err()
		})
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing a segment's contacts: %w", err)
	}
	page, next := driverkit.ContactPage(page, limit)
	return page, next, nil
}

// readFilter is read for the statements of filters, which differ with every filter: they are
// prepared for one use, not kept in the read pool's statement cache.
func (s *Store) readFilter(ctx context.Context, q string, args []any, each func(*sql.Rows) error) error {
	if err := s.guard.check(); err != nil {
		return err
	}
	return eachRow(each)(s.rdb.QueryContext(ctx, q, args...))
}

// scanSegmentContact reads one row of qSegmentContactsSelect.
func scanSegmentContact(sc scanner) (store.Contact, error) {
	var (
		c                store.Contact
		ext              sql.NullString
		attrs            string
		active           sql.NullInt64
		created, updated int64
	)
	if err := sc.Scan(&c.ID, &c.Email, &c.EmailKey, &ext, &c.Name, &c.Locale, &c.Timezone, &attrs, &active,
		&created, &updated); err != nil {
		return store.Contact{}, err
	}
	c.ExternalID, c.Attributes = ext.String, json.RawMessage(attrs)
	c.LastActiveAt, c.CreatedAt, c.UpdatedAt = fromMicros(active.Int64), fromMicros(created), fromMicros(updated)
	return c, nil
}
