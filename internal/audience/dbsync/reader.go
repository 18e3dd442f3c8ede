package dbsync

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/postie/postie/internal/store"
)

// reader reads a source's rows. Every query runs in a read-only transaction of its own, in a
// session whose time zone is UTC, so that times compare and scan in UTC whatever the server's
// zone (a DATETIME or a timestamp without time zone is taken to hold UTC).
type reader struct {
	db      *sql.DB
	driver  string
	query   string // the operator's SELECT, trailing semicolons cut
	mapping store.SourceMapping
	// cols are the SELECT's column names; col maps each mapped field to its column (as named by
	// the SELECT, which may differ in case from the mapping).
	cols []string
	col  map[string]string
}

// openDB connects to a source's database (lazily: database/sql dials on first use).
func openDB(driver, dsn string) (*sql.DB, error) {
	switch driver {
	case store.SourceMySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, errors.New("the DSN is not a MySQL DSN (user:password@tcp(host:3306)/database)")
		}
		cfg.ParseTime, cfg.Loc = true, time.UTC
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["time_zone"] = "'+00:00'"
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("MySQL connector: %w", err)
		}
		return sql.OpenDB(conn), nil
	case store.SourcePostgres:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			// pgx's error may quote the DSN: say only what is wrong.
			return nil, errors.New("the DSN is not a PostgreSQL URL or key=value DSN")
		}
		cfg.RuntimeParams["timezone"] = "UTC"
		return stdlib.OpenDB(*cfg), nil
	}
	return nil, fmt.Errorf("unknown driver %q", driver)
}

// CheckDSN reports whether dsn can be parsed for driver, without connecting. Its error never
// quotes the DSN (a secret).
func CheckDSN(driver, dsn string) error {
	db, err := openDB(driver, dsn)
	if err != nil {
		return err
	}
	return db.Close()
}

var leadingKeyword = regexp.MustCompile(`(?is)^\s*(select|with)\b`)

// CheckQuery checks that q looks like one SELECT (or WITH … SELECT) statement. The read-only
// transaction every read runs in, and a read-only user, are what keep a source from writing.
func CheckQuery(q string) error {
	q = trimQuery(q)
	switch {
	case q == "":
		return errors.New("is empty")
	case !leadingKeyword.MatchString(q):
		return errors.New("must be a SELECT (or WITH … SELECT) statement")
	case strings.Contains(q, ";"):
		return errors.New("must be one statement (no ';' but at the end)")
	}
	return nil
}

func trimQuery(q string) string {
	return strings.TrimRight(strings.TrimSpace(q), "; \t\r\n")
}

func (r *reader) quote(name string) string {
	if r.driver == store.SourceMySQL {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// ph is the n-th placeholder (from 1): '?' for MySQL, $n for PostgreSQL. Only the conditions
// postie adds have placeholders: the operator's SELECT is kept as written ('?' is an operator of
// PostgreSQL's jsonb).
func (r *reader) ph(n int) string {
	if r.driver == store.SourceMySQL {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}

// wrapped is the operator's SELECT as a derived table, with a condition and a tail.
func (r *reader) wrapped(cols, where, tail string) string {
	return "SELECT " + cols + " FROM (" + r.query + ") AS postie_src WHERE " + where + " " + tail
}

// mappingError is a SELECT that does not return what its mapping names: the source is in error
// and nothing is read.
type mappingError struct{ missing, have []string }

func (e *mappingError) Error() string {
	return fmt.Sprintf("the SELECT does not return the mapped column(s) %s (it returns %s)",
		strings.Join(e.missing, ", "), strings.Join(e.have, ", "))
}

// probe reads the SELECT's columns (no rows) and matches the mapping to them, case-insensitively.
func (r *reader) probe(ctx context.Context) error {
	err := r.readOnly(ctx, r.wrapped("*", "1 = 0", ""), nil, func(rows *sql.Rows) error {
		var err error
		r.cols, err = rows.Columns()
		return err
	})
	if err != nil {
		return err
	}
	r.col = map[string]string{}
	var missing []string
	m := r.mapping
	for _, f := range []struct{ field, name string }{
		{"email", m.Email}, {"external_id", m.ExternalID}, {"name", m.Name}, {"locale", m.Locale},
		{"timezone", m.Timezone}, {"updated_at", m.UpdatedAt}, {"key", m.Key}, {"opt_out", m.OptOut},
		{"deleted", m.Deleted},
	} {
		if f.name == "" {
			continue
		}
		c, ok := r.find(f.name)
		if !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", f.name, f.field))
			continue
		}
		r.col[f.field] = c
	}
	for _, a := range m.Attributes {
		if _, ok := r.find(a); !ok {
			missing = append(missing, fmt.Sprintf("%s (attribute)", a))
		}
	}
	if len(missing) > 0 {
		return &mappingError{missing: missing, have: r.cols}
	}
	return nil
}

func (r *reader) find(name string) (string, bool) {
	for _, c := range r.cols {
		if c == name {
			return c, true
		}
	}
	for _, c := range r.cols {
		if strings.EqualFold(c, name) {
			return c, true
		}
	}
	return "", false
}

// readOnly runs q in a read-only transaction and hands its rows to each.
func (r *reader) readOnly(ctx context.Context, q string, args []any, each func(*sql.Rows) error) error {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	err = each(rows)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rows.Err()
	}
	return err
}

// now reads the source database's clock, in UTC.
func (r *reader) now(ctx context.Context) (time.Time, error) {
	q := "SELECT UTC_TIMESTAMP(6)"
	if r.driver == store.SourcePostgres {
		q = "SELECT statement_timestamp()"
	}
	var t time.Time
	err := r.readOnly(ctx, q, nil, func(rows *sql.Rows) error {
		if !rows.Next() {
			return errors.New("the database did not tell its time")
		}
		return rows.Scan(&t)
	})
	return t.UTC(), err
}

// row is one row of the SELECT, by column name, with its position in the mark's order.
type row struct {
	values    map[string]any
	updatedAt time.Time
	key       any // int64 or string
}

// position is where a read starts: after (Time, Key) exclusive, or from Time inclusive when
// Key is nil; the zero position reads every row.
type position struct {
	Time time.Time
	Key  any
}

// page reads up to limit rows after p, ordered by updated_at then key (keyset pagination, so
// rows sharing an updated_at are neither skipped nor read twice across pages). Rows whose
// updated_at or key is NULL are never read.
func (r *reader) page(ctx context.Context, p position, limit int) ([]row, error) {
	u, k := r.quote(r.col["updated_at"]), r.quote(r.col["key"])
	where := u + " IS NOT NULL AND " + k + " IS NOT NULL"
	var args []any
	switch {
	case p.Time.IsZero():
	case p.Key == nil:
		where += " AND " + u + " >= " + r.ph(1)
		args = append(args, p.Time.UTC())
	default:
		where += " AND (" + u + " > " + r.ph(1) + " OR (" + u + " = " + r.ph(2) + " AND " + k + " > " + r.ph(3) + "))"
		args = append(args, p.Time.UTC(), p.Time.UTC(), p.Key)
	}
	q := r.wrapped("*", where, "ORDER BY "+u+", "+k+" LIMIT "+strconv.Itoa(limit))
	var out []row
	err := r.readOnly(ctx, q, args, func(rows *sql.Rows) error {
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			rw := row{values: make(map[string]any, len(cols))}
			for i, c := range cols {
				rw.values[c] = normalize(vals[i])
			}
			t, ok := rw.values[r.col["updated_at"]].(time.Time)
			if !ok {
				return fmt.Errorf("the updated_at column %s is not a date and time (it holds %T)", r.col["updated_at"], rw.values[r.col["updated_at"]])
			}
			rw.updatedAt = t.UTC()
			rw.key = keyValue(rw.values[r.col["key"]])
			out = append(out, rw)
		}
		return nil
	})
	return out, err
}

// keys reads every row's key and whether it is flagged deleted, for a reconciliation.
func (r *reader) keys(ctx context.Context, each func(key string, deleted bool)) error {
	cols := r.quote(r.col["key"])
	if d := r.col["deleted"]; d != "" {
		cols += ", " + r.quote(d)
	}
	return r.readOnly(ctx, r.wrapped(cols, r.quote(r.col["key"])+" IS NOT NULL", ""), nil, func(rows *sql.Rows) error {
		var key, del any
		dest := []any{&key}
		if r.col["deleted"] != "" {
			dest = append(dest, &del)
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			each(keyText(keyValue(normalize(key))), truthy(normalize(del)))
		}
		return nil
	})
}

// normalize turns what the drivers scan into plain values: []byte into string, unsigned and
// smaller integers into int64, times into UTC.
func normalize(v any) any {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case int32:
		return int64(v)
	case int16:
		return int64(v)
	case int8:
		return int64(v)
	case uint64:
		return int64(v)
	case uint32:
		return int64(v)
	case float32:
		return float64(v)
	case time.Time:
		return v.UTC()
	}
	return v
}

// keyValue is a key as the mark keeps it and queries bind it: an int64 or a string.
func keyValue(v any) any {
	switch v := v.(type) {
	case int64:
		return v
	case string:
		return v
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// keyText is a key as the links keep it.
func keyText(k any) string {
	if n, ok := k.(int64); ok {
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprint(k)
}

// encodeKey and decodeKey store a key in the mark as a JSON number or string.
func encodeKey(k any) json.RawMessage {
	if k == nil {
		return nil
	}
	b, _ := json.Marshal(k)
	return b
}

func decodeKey(b json.RawMessage) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case json.Number:
		return v.Int64()
	case string:
		return v, nil
	}
	return nil, fmt.Errorf("mark key %s is neither a number nor a string", b)
}

// truthy reads an opt-out or deleted column: true, a non-zero number, "1", "true", "t", "yes",
// "y" (any case) or a date and time (a deleted_at column that is set) are true; NULL, false, 0,
// "" and any other text are false.
func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case int64:
		return v != 0
	case float64:
		return v != 0
	case time.Time:
		return true
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true", "t", "yes", "y":
			return true
		}
	}
	return false
}
