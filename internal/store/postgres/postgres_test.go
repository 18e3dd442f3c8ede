package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres/pgadmin"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openURL opens a store on url (migrating it) and closes it when t ends.
func openURL(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: url, Migrate: true, ReconnectMin: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTest opens a store on a fresh database.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openURL(t, migratedURL(t))
}

// template is a database migrated once per test process, which migratedURL clones: copying a
// database is much cheaper than running every migration for each of the conformance suite's
// cases.
var template struct {
	once sync.Once
	name string
	drop func() error
	err  error
}

// cloneWorkers is how many clones of the template are made at once, ahead of the tests that take
// them. CREATE DATABASE spends most of its time waiting rather than working, so clones made
// together take little longer than one; made one at a time for each test (only GOMAXPROCS tests
// run at once), they were most of the package's running time.
const cloneWorkers = 8

// clones hands out the clones the workers make ahead; stop ends the workers, which drop the
// clones nobody took.
var clones struct {
	once sync.Once
	ch   chan clone
	stop chan struct{}
	wg   sync.WaitGroup
}

type clone struct {
	url  string
	drop func() error
	err  error
}

// migratedURL is pgtest.URL for a fresh database that is already migrated (a clone of the
// process's template), dropped when t ends.
func migratedURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(pgtest.EnvURL)
	if base == "" {
		return pgtest.URL(t) // skips, or fails in CI
	}
	template.once.Do(func() {
		ctx := context.Background()
		var tmplURL string
		if tmplURL, template.drop, template.err = pgadmin.CreateDatabase(ctx, base, "postie_tmpl"); template.err != nil {
			return
		}
		s, err := Open(ctx, Options{URL: tmplURL, Migrate: true})
		if err != nil {
			template.err = err
			return
		}
		s.Close()
		u, _ := url.Parse(tmplURL)
		template.name = strings.TrimPrefix(u.Path, "/")
	})
	if template.err != nil {
		t.Fatalf("migrating the template database: %v", template.err)
	}
	clones.once.Do(func() {
		clones.ch = make(chan clone)
		clones.stop = make(chan struct{})
		for range cloneWorkers {
			clones.wg.Add(1)
			go cloneWorker(base)
		}
	})
	c := <-clones.ch
	if c.err != nil {
		t.Fatalf("cloning the template database: %v", c.err)
	}
	t.Cleanup(func() {
		if err := c.drop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return c.url
}

// cloneWorker makes clones of the template and hands them to migratedURL until stopped.
func cloneWorker(base string) {
	defer clones.wg.Done()
	for {
		var c clone
		c.url, c.drop, c.err = pgadmin.CreateDatabaseFrom(context.Background(), base, "postie_test", template.name)
		select {
		case clones.ch <- c:
		case <-clones.stop:
			if c.err == nil {
				if err := c.drop(); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
			}
			return
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if clones.stop != nil {
		close(clones.stop)
		clones.wg.Wait()
	}
	if template.drop != nil {
		if err := template.drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

// TestStoreQueryExecModes runs the conformance suite with pgx's query modes that use no named
// prepared statement (PgBouncer in transaction mode): every parameter must encode from its Go type
// alone.
func TestStoreQueryExecModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store {
				u, err := url.Parse(migratedURL(t))
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				q.Set("default_query_exec_mode", mode)
				u.RawQuery = q.Encode()
				return openURL(t, u.String())
			})
		})
	}
}

// TestMigrationsInStep checks that both drivers have the same migration versions, so that a schema
// change is made for both.
func TestMigrationsInStep(t *testing.T) {
	t.Parallel()
	versions := func(dir string) []string {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if v, _, ok := strings.Cut(e.Name(), "_"); ok && strings.HasSuffix(e.Name(), ".sql") {
				out = append(out, v)
			}
		}
		return out
	}
	pg, lite := versions("migrations"), versions(filepath.Join("..", "sqlite", "migrations"))
	if len(pg) == 0 || !slices.Equal(pg, lite) {
		t.Errorf("migration versions differ: postgres %v, sqlite %v", pg, lite)
	}
	embedded, err := migrations.ReadDir("migrations")
	if err != nil || len(embedded) != len(pg) {
		t.Errorf("embedded migrations: %d files, %v; want %d", len(embedded), err, len(pg))
	}
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 { // nodes starting together
		wg.Go(func() {
			s, err := Open(t.Context(), Options{URL: url, Migrate: true})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open with Migrate: %v", err)
		}
	}
	s := openURL(t, url)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
}

func acceptN(t testing.TB, s *Store, n int) []string {
	t.Helper()
	msgs := make([]store.NewMessage, n)
	ids := make([]string, n)
	for i := range msgs {
		msgs[i] = storetest.Message(t0)
		ids[i] = msgs[i].Message.ID
	}
	if _, err := s.MessagesAccept(context.Background(), store.MessagesAcceptParams{Messages: msgs, Now: t0}); err != nil {
		t.Fatalf("MessagesAccept: %v", err)
	}
	return ids
}

// TestClaimSkipLocked: two nodes (two Stores, two pools) claiming from one queue at once never take
// the same message, and together take all of them.
func TestClaimSkipLocked(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	a, b := openURL(t, url), openURL(t, url)
	const n = 2000
	want := acceptN(t, a, n)

	var (
		mu   sync.Mutex
		seen = map[string]string{}
		dups []string
		wg   sync.WaitGroup
		// Every worker waits after its first claim until all have made one, so claims of both
		// stores overlap whatever the scheduling (8 × 25 is far less than n: each worker,
		// hence each store, claims rows while the others do).
		first sync.WaitGroup
	)
	errs := make(chan error, 8)
	first.Add(8)
	for w := range 8 {
		wg.Go(func() {
			s, owner := a, fmt.Sprintf("node-a/%d", w)
			if w%2 == 1 {
				s, owner = b, fmt.Sprintf("node-b/%d", w)
			}
			for i := 0; ; i++ {
				got, err := s.MessageClaim(t.Context(), store.MessageClaimParams{Owner: owner,
					Stream: store.StreamTransactional, Limit: 25, Now: t0, LeaseUntil: t0.Add(time.Minute)})
				if i == 0 {
					first.Done()
					first.Wait()
				}
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, c := range got {
					if prev, ok := seen[c.ID]; ok {
						dups = append(dups, c.ID+" ("+prev+", "+owner+")")
					}
					seen[c.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("MessageClaim: %v", err)
	}
	if len(dups) > 0 || len(seen) != len(want) {
		t.Fatalf("%d claimed of %d, duplicates: %v", len(seen), len(want), dups)
	}
}

func waitWake(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second): // a failure guard, not a wait for time to pass
		t.Fatalf("no wake-up after %s", what)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// twoNodes opens two stores on one fresh database and returns them with the second one's wake-up
// channels, drained.
func twoNodes(t *testing.T) (a, b *Store, tx, bc <-chan struct{}) {
	t.Helper()
	url := pgtest.URL(t)
	a, b = openURL(t, url), openURL(t, url)
	tx, bc = b.Wakeups(store.StreamTransactional), b.Wakeups(store.StreamBroadcast)
	drain(tx)
	drain(bc)
	return a, b, tx, bc
}

// TestWakeupAcrossNodes: an accept on one node wakes the workers of another through NOTIFY.
func TestWakeupAcrossNodes(t *testing.T) {
	t.Parallel()
	a, _, tx, bc := twoNodes(t)

	acceptN(t, a, 1)
	waitWake(t, tx, "an accept on the other node")

	// Retry and rescue on one node wake the other too.
	m := storetest.Message(t0)
	m.Message.Stream = store.StreamBroadcast
	if _, err := a.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	waitWake(t, bc, "a broadcast accept on the other node")
	if _, err := a.MessageClaim(t.Context(), store.MessageClaimParams{Owner: "dead", Stream: store.StreamBroadcast,
		Limit: 1, Now: t0, LeaseUntil: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	drain(bc)
	if ids, err := a.MessageRescue(t.Context(), t0.Add(time.Minute)); err != nil || len(ids) != 1 {
		t.Fatalf("MessageRescue = %v, %v", ids, err)
	}
	waitWake(t, bc, "a rescue on the other node")
}

// TestListenerReconnects: when the listening connection is killed, the listener reconnects, wakes
// every stream (a notification may have been lost meanwhile), and hears notifications again.
func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	a, b, tx, bc := twoNodes(t)

	pid := b.listener.pid.Load()
	if pid == 0 {
		t.Fatal("the listener has no connection")
	}
	var killed bool
	if err := a.pool.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, killed, err)
	}
	waitWake(t, tx, "the listener reconnected (transactional)")
	waitWake(t, bc, "the listener reconnected (broadcast)")

	// Listening again (the wake-ups above came after the new LISTEN): a notification arrives.
	drain(tx)
	acceptN(t, a, 1)
	waitWake(t, tx, "an accept after the reconnection")
}

// TestDatabaseDown: with the database unreachable, methods return errors wrapping
// store.ErrUnavailable, never a state (no ErrNotFound for a message that exists, no empty claim).
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := openURL(t, url)
	ids := acceptN(t, s, 1)

	admin, err := pgx.Connect(t.Context(), os.Getenv(pgtest.EnvURL))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// Refuse new connections to the database and end the open ones: a database going away.
	dbname := strings.TrimPrefix(strings.SplitN(url[strings.LastIndex(url, "/"):], "?", 2)[0], "/")
	for _, q := range []string{
		"ALTER DATABASE " + dbname + " WITH ALLOW_CONNECTIONS false",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + dbname + "' AND pid <> pg_backend_pid()",
	} {
		if _, err := admin.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "ALTER DATABASE "+dbname+" WITH ALLOW_CONNECTIONS true")
	})

	down := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			t.Errorf("%s with the database down: %v, want an error wrapping store.ErrUnavailable", what, err)
		}
	}
	_, err = s.MessageGet(t.Context(), ids[0])
	down("MessageGet", err)
	_, err = s.MessageClaim(t.Context(), store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional,
		Limit: 1, Now: t0, LeaseUntil: t0.Add(time.Minute)})
	down("MessageClaim", err)
	_, err = s.MessageFinish(t.Context(), t0, []store.MessageFinishParams{{ID: ids[0], Owner: "w", Status: store.StatusSent}})
	down("MessageFinish", err)
	_, err = s.MessageRetry(t.Context(), store.MessageRetryParams{ID: ids[0], Now: t0})
	down("MessageRetry", err)
	_, err = s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{storetest.Message(t0)},
		Idempotency: &store.Idempotency{APIKeyID: "k", Key: "x", RequestHash: []byte("h"), ExpiresAt: t0.Add(time.Hour)}, Now: t0})
	down("MessagesAccept", err)
	down("Ping", s.Ping(t.Context()))

	// Back up: the pool reconnects.
	if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+dbname+" WITH ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MessageGet(t.Context(), ids[0]); err != nil {
		t.Errorf("MessageGet after the database came back: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := Open(t.Context(), Options{URL: "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"}); err == nil {
		t.Error("Open of an unreachable server succeeded")
	}
	if _, err := Open(t.Context(), Options{URL: "postgres://u:secret@[::1"}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open of a malformed URL: %v (want an error without the password)", err)
	}
}

func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s, err := Open(t.Context(), Options{URL: url, StatementTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.pool.Exec(t.Context(), "SELECT pg_sleep(1)"); err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Errorf("a 1s statement with a 50ms timeout: %v", err)
	}
	if n := s.pool.Config().MaxConns; n != DefaultMaxConns {
		t.Errorf("MaxConns = %d, want the default %d", n, DefaultMaxConns)
	}
}

// TestQueriesUseIndexes: the statements on the delivery path and the listing filters are answered
// from the index meant for them (sequential scans disabled, so that the empty tables do not make a
// scan look cheaper): a partial index's condition not repeated in a query, or a missing index,
// shows up here rather than in production.
func TestQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	type query struct {
		q     string
		args  []any
		index []string // one of these must appear in the plan
	}
	queries := map[string]query{
		"claim":    {qMessageClaim, []any{"w", ts(t0), tsNotNull(t0), store.StreamTransactional, int32(10)}, []string{"messages_claim"}},
		"next due": {qMessageNextDue, []any{store.StreamTransactional}, []string{"messages_claim"}},
		"rescue":   {qRescue, []any{tsNotNull(t0)}, []string{"messages_status"}},
		"match": {qSuppressionMatch, []any{[]string{"a@example.com", "b@example.com"}, tsNotNull(t0), []string{"global", "broadcast"}},
			[]string{"suppressions_pkey"}},
	}
	for name, l := range map[string]struct {
		p     store.MessageListParams
		index string
	}{
		"list by status":    {store.MessageListParams{Statuses: []store.Status{store.StatusFailed}}, "messages_status"},
		"list by tag":       {store.MessageListParams{Tag: "orders"}, "messages_tags"},
		"list by recipient": {store.MessageListParams{Recipient: "a@example.com"}, "message_recipients_email"},
		"list by campaign":  {store.MessageListParams{CampaignID: "cmp_1"}, "messages_campaign"},
		"list by code":      {store.MessageListParams{ErrorCode: "550"}, "messages_error_code"},
		"list by enhanced":  {store.MessageListParams{ErrorCode: "5.1.1"}, "messages_error_enhanced"},
		"list by prefix":    {store.MessageListParams{ErrorCode: "5.1."}, "messages_error_enhanced"},
		"list page":         {store.MessageListParams{Cursor: "msg_x"}, "messages_pkey"},
	} {
		q, args, err := listQuery(l.p, messageColumns)
		if err != nil {
			t.Fatal(err)
		}
		queries[name] = query{q, args, []string{l.index}}
	}
	conn, err := s.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(t.Context(), "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), "RESET enable_seqscan")
	for name, q := range queries {
		rows, err := conn.Query(t.Context(), "EXPLAIN "+q.q, q.args...)
		if err != nil {
			t.Fatalf("%s: EXPLAIN: %v", name, err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: EXPLAIN: %v", name, err)
		}
		text := strings.Join(plan, "\n")
		uses := slices.ContainsFunc(q.index, func(ix string) bool { return strings.Contains(text, " "+ix+" ") || strings.HasSuffix(text, " "+ix) })
		if strings.Contains(text, "Seq Scan") || !uses {
			t.Errorf("%s: want an index scan of %s, plan:\n%s", name, strings.Join(q.index, " or "), text)
		}
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true},  // admin_shutdown
		{&pgconn.PgError{Code: "08006"}, true},  // connection_failure
		{&pgconn.PgError{Code: "53300"}, true},  // too_many_connections
		{&pgconn.PgError{Code: "53100"}, true},  // disk_full
		{&pgconn.PgError{Code: "23505"}, false}, // unique_violation
		{&pgconn.PgError{Code: "57014"}, false}, // query_canceled (statement timeout)
		{fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{pgconn.ErrConnClosed, true},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{errors.New("something else"), false},
	} {
		err := unavailable(tc.err)
		if got := errors.Is(err, store.ErrUnavailable); got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("unavailable(%v) = %v: wraps ErrUnavailable %v, want %v (and the error itself)", tc.err, err, got, tc.want)
		}
	}
	if unavailable(nil) != nil {
		t.Error("unavailable(nil) != nil")
	}
}

// TestNULIsBadText: what PostgreSQL cannot store (U+0000 in text or jsonb) comes back as
// store.ErrBadText, which the API answers with a 422, and nothing is stored.
func TestNULIsBadText(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	now := time.Now()
	err := s.SuppressionUpsert(t.Context(), []store.Suppression{{Email: "nul@example.com", Reason: store.ReasonManual,
		Detail: "a\x00b", CreatedAt: now}})
	if !errors.Is(err, store.ErrBadText) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("SuppressionUpsert with a NUL: %v, want ErrBadText", err)
	}
	if _, err := s.SuppressionGet(t.Context(), "nul@example.com", "", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SuppressionGet after the refused upsert: %v, want ErrNotFound", err)
	}
	for _, e := range []*pgconn.PgError{{Code: "22P05"}, {Code: "22021", Message: `invalid byte sequence for encoding "UTF8": 0x00`}} {
		if err := unavailable(e); !errors.Is(err, store.ErrBadText) {
			t.Errorf("unavailable(%v) = %v, want ErrBadText", e, err)
		}
	}
	if err := unavailable(&pgconn.PgError{Code: "22021", Message: `invalid byte sequence for encoding "UTF8": 0xff`}); errors.Is(err, store.ErrBadText) {
		t.Errorf("invalid UTF-8 other than NUL reported as ErrBadText: %v", err)
	}
}

// TestAcceptGroupIsolation: concurrent accepts are written in shared transactions (group.go), yet
// a request whose row breaks a constraint fails alone: every other request is stored.
func TestAcceptGroupIsolation(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	taken := acceptN(t, s, 1)[0]
	const requests = 200
	errs := make([]error, requests)
	ids := make([]string, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			m := storetest.Message(t0)
			if i%50 == 7 {
				m.Message.ID = taken // a duplicate primary key
			}
			ids[i] = m.Message.ID
			_, errs[i] = s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i%50 == 7) != (err != nil) {
			t.Errorf("request %d: %v", i, err)
			continue
		}
		if err != nil {
			continue
		}
		if _, err := s.MessageGet(t.Context(), ids[i]); err != nil {
			t.Errorf("request %d was answered but its message is not stored: %v", i, err)
		}
	}
}

// TestRawCompression: the raw MIME is compressed with lz4 where the server has it (migration
// 00006), and a value that is compressed reads back whole.
func TestRawCompression(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	var lz4 bool
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) > 0 FROM pg_settings
		WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)`).Scan(&lz4); err != nil {
		t.Fatal(err)
	}
	if lz4 { // else pglz, the default (PostgreSQL 13 has no attcompression)
		var method string
		if err := s.pool.QueryRow(t.Context(), `SELECT attcompression::text FROM pg_attribute
			WHERE attrelid = 'message_raw'::regclass AND attname = 'raw'`).Scan(&method); err != nil {
			t.Fatal(err)
		}
		if method != "l" {
			t.Fatalf("message_raw.raw compression %q, want l (lz4)", method)
		}
	}
	raw := []byte(strings.Repeat("Subject: compressible\r\n", 1000)) // well over the TOAST threshold
	m := store.Message{ID: "msg_lz4", Stream: store.StreamTransactional, Status: store.StatusQueued,
		Recipients: []string{"a@example.com"}}
	if _, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Now: t0,
		Messages: []store.NewMessage{{Message: m, Raw: raw}}}); err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := s.pool.QueryRow(t.Context(), `SELECT pg_column_size(raw) FROM message_raw WHERE message_id = $1`,
		m.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored >= len(raw)/4 {
		t.Errorf("%d bytes stored for %d bytes of raw MIME: not compressed", stored, len(raw))
	}
	got, err := s.MessageRaw(t.Context(), m.ID)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("MessageRaw: %d bytes, %v; want the %d bytes accepted", len(got), err, len(raw))
	}
}

// TestFinishFindsRowsByID: MessageFinish finds its messages from their ids, even on a table
// without statistics (younger than autovacuum's first ANALYZE) where thousands of messages went
// through 'sending', rather than walking every 'sending' entry of messages_status (the dead ones
// every claim leaves there included) for each finish.
func TestFinishFindsRowsByID(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	const n, inFlight = 3000, 500
	if _, err := s.pool.Exec(ctx, `INSERT INTO messages (id, stream, status, next_attempt_at, created_at, updated_at)
		SELECT 'msg_' || lpad(g::text, 8, '0'), 'transactional', 'queued', $2, $2, $2
		FROM generate_series(1, $1) g`, n, tsNotNull(t0)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 250 { // claimed and finished by 250s, the last inFlight only claimed
		for _, st := range []string{"sending", "sent"} {
			if st == "sent" && i >= n-inFlight {
				continue
			}
			if _, err := s.pool.Exec(ctx, `UPDATE messages SET status = $3, lease_owner = 'w' WHERE id > $1 AND id <= $2`,
				fmt.Sprintf("msg_%08d", i), fmt.Sprintf("msg_%08d", i+250), st); err != nil {
				t.Fatal(err)
			}
		}
	}
	var rows [][]any
	for i := range 11 {
		rows = append(rows, []any{int32(i), fmt.Sprintf("msg_%08d", n-i), "w", string(store.StatusSent), int32(1),
			tsNotNull(t0), nil, "", ts(t0)})
	}
	args := columns(rows, "integer", "text", "text", "text", "integer", "timestamptz", "text", "text", "timestamptz")
	args = append(args, tsNotNull(t0))
	args = append(args, columns(nil, "integer", "text", "timestamptz", "text")...)
	args = append(args, columns(nil, finishSuppressionParamTypes...)...)
	args = append(args, tsNotNull(t0.Truncate(time.Hour)), true, int16(0)) // the delivery counts' hour, counted here, shard
	res, err := s.pool.Query(ctx, "EXPLAIN "+qMessageFinish, args...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	byID := slices.ContainsFunc(plan, func(l string) bool {
		return strings.Contains(l, "Index Cond:") && strings.Contains(l, "id = (f.id)")
	})
	if text := strings.Join(plan, "\n"); !byID {
		t.Errorf("the finish does not look its messages up by id; plan:\n%s", text)
	}
}

// TestFinishWithoutRoutes checks that with no webhook endpoint the finish's outbox part runs
// nothing but its probe of webhook_routes: no recipient is read, no delivery planned.
func TestFinishWithoutRoutes(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	m := storetest.Message(t0)
	if _, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MessageClaim(ctx, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 1,
		Now: t0, LeaseUntil: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	rows := [][]any{{int32(0), m.Message.ID, "w", string(store.StatusSent), int32(1), tsNotNull(t0), nil, "", ts(t0)}}
	args := columns(rows, "integer", "text", "text", "text", "integer", "timestamptz", "text", "text", "timestamptz")
	args = append(args, tsNotNull(t0))
	args = append(args, columns([][]any{{int32(0), store.EventSent, tsNotNull(t0), nil}}, "integer", "text", "timestamptz", "text")...)
	args = append(args, columns(nil, finishSuppressionParamTypes...)...)
	args = append(args, tsNotNull(t0.Truncate(time.Hour)), true, int16(0)) // the delivery counts' hour, counted here, shard
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	res, err := tx.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+qMessageFinish, args...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "Update on messages") || !strings.Contains(text, "message_recipients") {
		t.Fatalf("not the finish's plan:\n%s", text)
	}
	for _, l := range plan {
		if strings.Contains(l, "message_recipients") && !strings.Contains(l, "never executed") {
			t.Errorf("the outbox part reads recipients with no route:\n%s", text)
			break
		}
	}
}
