// Package doctor checks a postie installation from the outside (postie doctor): the database and
// its schema, the relay, the SMTP listeners' certificate, the DNS of the sending domains, the
// clock and the free disk. Each check says ok, warn or FAIL and how to fix what it found; it
// changes nothing anywhere.
package doctor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/postie/postie/internal/config"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for a read-only look at the file
)

// Status is a check's verdict.
type Status int

const (
	OK Status = iota
	Warn
	Fail
)

func (s Status) String() string { return [...]string{"ok", "warn", "FAIL"}[s] }

// Result is one check's finding.
type Result struct {
	Check  string // "config", "database", "migrations", "clock", "relay", "tls", "dns", "disk"
	Status Status
	Detail string // what was found
	Fix    string // how to fix it; "" when ok
}

// Options configures Run. Config is required; the zero value of the rest is valid.
// RelayProbe is what a relay probe found: the relay's host:port (set also on failure), the TLS
// version spoken ("" for none), whether AUTH was done.
type RelayProbe struct {
	Addr, TLS string
	Auth      bool
}

// Parts are what doctor needs of the concrete drivers and the relay transport.
type Parts struct {
	// LatestMigration is the schema version each driver's binary carries, by driver name.
	LatestMigration map[string]int64
	// MinFreeBytes is the free space under which the SQLite store stops taking writes.
	MinFreeBytes int64
	// ProbeRelay connects to the relay of an SMTP URL as delivery does, then QUITs; a failure
	// of a step is a *transport.Error naming it.
	ProbeRelay func(ctx context.Context, smtpURL string, timeout time.Duration) (RelayProbe, error)
}

type Options struct {
	Config config.Config
	// Sources says where the settings came from (the configuration file's name, its secrets).
	Sources config.Sources
	// Resolver looks up the DNS records; nil: the system's resolver.
	Resolver *net.Resolver
	// Timeout bounds each network check; 0 means 10s.
	Timeout time.Duration
	// Now is the local clock compared with the database's; nil means time.Now.
	Now func() time.Time
	// Parts are the concrete drivers and transport the checks ask; only app knows them
	// (app.DoctorParts).
	Parts Parts
	// MinFree and WarnFree are the free bytes under which a disk check fails or warns; 0 means
	// Parts.MinFreeBytes (where postie stops taking writes) and 1 GiB.
	MinFree, WarnFree int64
	// ClockWarn and ClockFail are the skews against the database that warn or fail; 0 means 1s
	// and 15s (a quarter of the default lease).
	ClockWarn, ClockFail time.Duration
}

func (o *Options) defaults() {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinFree == 0 {
		o.MinFree = o.Parts.MinFreeBytes
	}
	if o.WarnFree == 0 {
		o.WarnFree = 1 << 30
	}
	if o.ClockWarn == 0 {
		o.ClockWarn = time.Second
	}
	if o.ClockFail == 0 {
		o.ClockFail = 15 * time.Second
	}
}

// Run runs every check and returns their results in order.
func Run(ctx context.Context, o Options) []Result {
	o.defaults()
	out := checkFile(o)
	out = append(out, checkDatabase(ctx, o)...)
	out = append(out, checkRelay(ctx, o))
	out = append(out, checkTLS(o)...)
	out = append(out, checkDNS(ctx, o)...)
	out = append(out, checkDisk(o)...)
	return out
}

// Failed reports whether any result is a FAIL.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Print writes the results, one line each with its fix indented below, and a summary line.
func Print(w io.Writer, rs []Result) {
	var n [3]int
	for _, r := range rs {
		n[r.Status]++
		fmt.Fprintf(w, "%-4s  %-10s  %s\n", r.Status, r.Check, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(w, "%-4s  %-10s  fix: %s\n", "", "", r.Fix)
		}
	}
	fmt.Fprintf(w, "%d ok, %d warn, %d FAIL\n", n[OK], n[Warn], n[Fail])
}

// checkDatabase checks that the database answers, that its schema is the one this binary
// migrates to, and the clock against the database's. It opens its own connection (SQLite: the
// file read-only, beside a running postie that holds the file's lock) and writes nothing.
func checkDatabase(ctx context.Context, o Options) []Result {
	db, err := o.Config.Database()
	if err != nil {
		return []Result{{"database", Fail, err.Error(), "fix POSTIE_DATABASE_URL"}}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var (
		q      querier
		latest int64
		where  string
	)
	switch db.Driver {
	case "sqlite":
		latest, where = o.Parts.LatestMigration["sqlite"], "sqlite "+db.Path
		if _, err := os.Stat(db.Path); errors.Is(err, os.ErrNotExist) {
			return []Result{{"database", Warn, where + ": no database file yet",
				"postie migrate (or the first postie serve) creates it; check POSTIE_DATABASE_URL if one exists elsewhere"}}
		}
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(db.Path), RawQuery: "mode=ro&_pragma=busy_timeout(5000)"}
		sdb, err := sql.Open("sqlite", u.String())
		if err == nil {
			defer sdb.Close()
			err = sdb.PingContext(ctx)
		}
		if err != nil {
			return []Result{{"database", Fail, where + ": " + err.Error(), "check the file's permissions and that it is a postie database"}}
		}
		q = sqlQuerier{sdb}
	case "postgres":
		latest = o.Parts.LatestMigration["postgres"]
		cc, err := pgx.ParseConfig(db.URL)
		if err != nil {
			// pgx's errors never include the password.
			return []Result{{"database", Fail, "postgres: " + err.Error(), "fix POSTIE_DATABASE_URL"}}
		}
		where = fmt.Sprintf("postgres %s:%d/%s", cc.Host, cc.Port, cc.Database)
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return []Result{{"database", Fail, where + ": " + err.Error(),
				"check that PostgreSQL runs and is reachable from here, and the user, password and database in POSTIE_DATABASE_URL"}}
		}
		defer conn.Close(context.Background())
		q = pgxQuerier{conn}
	}
	out := []Result{{Check: "database", Status: OK, Detail: where + " answers"}}
	out = append(out, checkSchema(ctx, q, latest))
	return append(out, checkClock(ctx, q, db.Driver, o))
}

// querier is the one query shape the checks need from either driver.
type querier interface {
	QueryRow(ctx context.Context, query string, dest ...any) error
}

type sqlQuerier struct{ db *sql.DB }

func (q sqlQuerier) QueryRow(ctx context.Context, query string, dest ...any) error {
	return q.db.QueryRowContext(ctx, query).Scan(dest...)
}

type pgxQuerier struct{ c *pgx.Conn }

func (q pgxQuerier) QueryRow(ctx context.Context, query string, dest ...any) error {
	return q.c.QueryRow(ctx, query).Scan(dest...)
}

// checkSchema compares the schema version goose recorded with the newest migration embedded.
func checkSchema(ctx context.Context, q querier, latest int64) Result {
	var applied sql.NullInt64
	err := q.QueryRow(ctx, "SELECT MAX(version_id) FROM goose_db_version", &applied)
	switch {
	case err != nil && strings.Contains(err.Error(), "goose_db_version"):
		return Result{"migrations", Warn, "the database has no postie schema yet",
			"postie migrate (or the first postie serve) creates it"}
	case err != nil:
		return Result{"migrations", Fail, "reading the schema version: " + err.Error(), "check the database user may read goose_db_version"}
	case applied.Int64 < latest:
		return Result{"migrations", Warn, fmt.Sprintf("schema version %d, this binary's is %d: %d migration(s) pending", applied.Int64, latest, latest-applied.Int64),
			"postie migrate applies them (postie serve does at start too)"}
	case applied.Int64 > latest:
		return Result{"migrations", Fail, fmt.Sprintf("schema version %d is newer than this binary's %d", applied.Int64, latest),
			"run the postie release that migrated the database (or a newer one); never an older binary against a newer schema"}
	}
	return Result{Check: "migrations", Status: OK, Detail: fmt.Sprintf("schema version %d, the latest", latest)}
}

// checkClock compares this machine's clock with the database's: nodes take leases and due times
// by their own clocks, so they must agree with each other (PostgreSQL) to well under a lease.
func checkClock(ctx context.Context, q querier, driver string, o Options) Result {
	query := "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
	if driver == "sqlite" {
		query = "SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"
	}
	before := o.Now()
	var us int64
	if err := q.QueryRow(ctx, query, &us); err != nil {
		return Result{"clock", Warn, "reading the database's clock: " + err.Error(), ""}
	}
	after := o.Now()
	mid := before.Add(after.Sub(before) / 2)
	skew := time.UnixMicro(us).Sub(mid)
	abs := skew.Abs()
	shown := abs.Round(time.Millisecond)
	if abs >= time.Second {
		shown = abs.Round(100 * time.Millisecond)
	}
	detail := fmt.Sprintf("this machine's clock is %s %s the database's", shown, map[bool]string{true: "ahead of", false: "behind"}[skew < 0])
	if shown == 0 {
		detail = "this machine's clock agrees with the database's (within 1ms)"
	}
	fix := "keep the clocks synchronised with NTP (chrony or systemd-timesyncd) here and on the database server"
	switch {
	case abs >= o.ClockFail:
		return Result{"clock", Fail, detail, fix}
	case abs >= o.ClockWarn:
		return Result{"clock", Warn, detail, fix}
	}
	return Result{Check: "clock", Status: OK, Detail: detail}
}

// checkDisk looks at the free space where postie writes on this node: the SQLite database's
// directory and the import spool.
func checkDisk(o Options) []Result {
	dirs := map[string]string{}
	var order []string
	add := func(what, dir string) {
		if _, ok := dirs[dir]; !ok {
			order = append(order, dir)
			dirs[dir] = what
		} else {
			dirs[dir] += " and " + what
		}
	}
	if db, err := o.Config.Database(); err == nil && db.Driver == "sqlite" {
		add("the database", filepath.Dir(db.Path))
	}
	add("CSV imports", o.Config.ImportSpoolDir())
	var out []Result
	for _, dir := range order {
		out = append(out, checkFree(dirs[dir], dir, o))
	}
	return out
}

func checkFree(what, dir string, o Options) Result {
	// A directory not made yet is on its nearest existing parent's file system.
	at := dir
	for {
		if _, err := os.Stat(at); err == nil || filepath.Dir(at) == at {
			break
		}
		at = filepath.Dir(at)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(at, &st); err != nil {
		return Result{"disk", Warn, fmt.Sprintf("%s (%s): %v", dir, what, err), ""}
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	detail := fmt.Sprintf("%s free in %s (%s)", size(free), dir, what)
	switch {
	case free < o.MinFree:
		return Result{"disk", Fail, detail, fmt.Sprintf("free space there: under %s postie stops taking writes", size(o.MinFree))}
	case free < o.WarnFree:
		return Result{"disk", Warn, detail, "free space there, or move it to a larger volume"}
	}
	return Result{Check: "disk", Status: OK, Detail: detail}
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
