package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest/migrated"
	"github.com/postie/postie/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// template is the migrated database file openTest copies.
var template migrated.Template

// openTest opens a store on a fresh migrated database: a copy of one migrated once per test
// process (opening it still runs Migrate, which finds nothing left to do).
func openTest(t testing.TB) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "postie.db")
	template.CopyTo(t, path, func(path string) error {
		s, err := Open(context.Background(), path, Options{Migrate: true})
		if err != nil {
			return err
		}
		return s.Close()
	})
	return openAt(t, path, Options{Migrate: true})
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

func TestOpenLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "dir", "postie.db") // parent directories are created
	first, err := Open(t.Context(), path, Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// flock locks conflict between two open file descriptions even in one process, so a second
	// Open here behaves as a second postie process would.
	second, err := Open(t.Context(), path, Options{Migrate: true})
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked database succeeded")
	}
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v; want an error wrapping store.ErrLocked that names %s", err, path)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	third := openAt(t, path, Options{Migrate: true}) // the lock went with Close
	if err := third.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "postie.db"), Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err = s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{storetest.Message(t0)}, Now: t0})
	if !errors.Is(err, errClosed) {
		t.Errorf("MessagesAccept after Close: %v, want errClosed", err)
	}
	if _, err := s.MessageGet(t.Context(), "msg_x"); err == nil {
		t.Error("MessageGet after Close succeeded")
	}
}

func TestReopenPersists(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "postie.db")
	s, err := Open(t.Context(), path, Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	m := storetest.Message(t0)
	if _, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatalf("MessagesAccept: %v", err)
	}
	key := store.APIKey{ID: id.New(id.APIKey), Name: "k", Hash: []byte("hash"), Prefix: "p", CreatedAt: t0}
	if err := s.APIKeyCreate(t.Context(), key); err != nil {
		t.Fatalf("APIKeyCreate: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openAt(t, path, Options{Migrate: true}) // migrating an up-to-date database is a no-op
	got, err := s.MessageGet(t.Context(), m.Message.ID)
	if err != nil {
		t.Fatalf("MessageGet after reopen: %v", err)
	}
	if diff := cmp.Diff(m.Message, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("message after reopen (-want +got):\n%s", diff)
	}
	raw, err := s.MessageRaw(t.Context(), m.Message.ID)
	if err != nil || !bytes.Equal(raw, m.Raw) {
		t.Errorf("MessageRaw after reopen = %q, %v", raw, err)
	}
	if evs, err := s.MessageEvents(t.Context(), m.Message.ID); err != nil || len(evs) != 1 {
		t.Errorf("MessageEvents after reopen = %v, %v", evs, err)
	}
	if k, err := s.APIKeyByHash(t.Context(), key.Hash); err != nil || k.ID != key.ID {
		t.Errorf("APIKeyByHash after reopen = %+v, %v", k, err)
	}
}

func TestMigrateLater(t *testing.T) {
	t.Parallel()
	s := openAt(t, filepath.Join(t.TempDir(), "postie.db"), Options{})
	m := storetest.Message(t0)
	accept := func() error {
		_, err := s.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0})
		return err
	}
	if err := accept(); err == nil {
		t.Fatal("MessagesAccept on an unmigrated database succeeded")
	}
	// Migrate runs between write groups on the live writer.
	for range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	if err := accept(); err != nil {
		t.Fatalf("MessagesAccept after Migrate: %v", err)
	}
	if _, err := s.MessageGet(t.Context(), m.Message.ID); err != nil {
		t.Fatalf("MessageGet: %v", err)
	}
}

// blockWriter occupies the writer with an operation until the returned function is called, so
// that operations submitted meanwhile form one group.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.w.do(context.Background(), 1, func(*wtx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("blocking operation: %v", err)
		}
	}
}

// waitQueued waits until n operations are queued for the writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.w.ops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d operations queued, want %d", len(s.w.ops), n)
		}
		runtime.Gosched()
	}
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	existing := storetest.Message(t0)
	if _, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{existing}, Now: t0}); err != nil {
		t.Fatalf("MessagesAccept: %v", err)
	}

	release := blockWriter(t, s)
	commits := s.w.commits.Load()

	const n = 40
	type result struct {
		msgs []store.NewMessage
		err  error
	}
	results := make([]result, n)
	cancelCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range n {
		msgs := []store.NewMessage{storetest.Message(t0), storetest.Message(t0)}
		opCtx := ctx
		switch i {
		case 7: // fails on its second message, after inserting the first
			msgs[1].Message.ID = existing.Message.ID
		case 23: // cancelled before its operation starts
			opCtx = cancelCtx
		}
		results[i].msgs = msgs
		wg.Go(func() {
			_, results[i].err = s.MessagesAccept(opCtx, store.MessagesAcceptParams{Messages: msgs, Now: t0})
		})
		waitQueued(t, s, i+1) // keep the submission order deterministic
	}
	cancel()
	release()
	wg.Wait()

	if got := s.w.commits.Load() - commits; got != 2 {
		t.Errorf("%d commits for the blocking operation and %d queued ones, want 2 (one group)", got, n)
	}
	for i, r := range results {
		for _, m := range r.msgs {
			if m.Message.ID == existing.Message.ID {
				continue
			}
			_, err := s.MessageGet(ctx, m.Message.ID)
			switch i {
			case 7, 23:
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("op %d: its message %s was stored (MessageGet: %v)", i, m.Message.ID, err)
				}
			default:
				if err != nil {
					t.Errorf("op %d: MessageGet(%s): %v", i, m.Message.ID, err)
				}
			}
		}
		switch i {
		case 7:
			if r.err == nil || !strings.Contains(r.err.Error(), "UNIQUE") {
				t.Errorf("op 7 error = %v, want its unique-constraint failure", r.err)
			}
		case 23:
			if !errors.Is(r.err, context.Canceled) {
				t.Errorf("op 23 error = %v, want context.Canceled", r.err)
			}
		default:
			if r.err != nil {
				t.Errorf("op %d failed with the group: %v", i, r.err)
			}
		}
	}
}

// Delivery's operations (doUrgent) are taken before other pending ones: a claim or an outcome
// queued behind large accepts runs in the next group, not after all of them.
func TestUrgentOperationsGoFirst(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	release := blockWriter(t, s)

	var mu sync.Mutex
	var order []string
	record := func(name string) func(*wtx) error {
		return func(*wtx) error {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, name)
			return nil
		}
	}
	var wg sync.WaitGroup
	for i := range 3 { // each a group of its own
		wg.Go(func() {
			if err := s.w.do(ctx, maxGroupWeight, record(fmt.Sprintf("accept%d", i))); err != nil {
				t.Error(err)
			}
		})
		waitQueued(t, s, i+1)
	}
	wg.Go(func() {
		if err := s.w.doUrgent(ctx, 1, record("finish")); err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for len(s.w.urgent) < 1 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	release()
	wg.Wait()

	want := []string{"finish", "accept0", "accept1", "accept2"}
	if !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
}

// When the group transaction itself is lost, every caller of the group gets the error and
// nothing of the group is committed.
func TestGroupCommitFailsTogether(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	release := blockWriter(t, s)

	good := []store.NewMessage{storetest.Message(t0), storetest.Message(t0)}
	errs := make([]error, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		_, errs[0] = s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: good[:1], Now: t0})
	})
	waitQueued(t, s, 1)
	wg.Go(func() {
		errs[1] = s.w.do(ctx, 1, func(t *wtx) error {
			// What SQLite does on SQLITE_FULL or SQLITE_IOERR: it rolls the whole transaction
			// back by itself, and the statement that hit it fails.
			if _, err := t.exec(qRollback); err != nil {
				return err
			}
			return errors.New("disk I/O error (simulated)")
		})
	})
	waitQueued(t, s, 2)
	wg.Go(func() {
		_, errs[2] = s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: good[1:], Now: t0})
	})
	waitQueued(t, s, 3)
	release()
	wg.Wait()

	for i, err := range errs {
		if err == nil {
			t.Errorf("op %d succeeded in a lost transaction", i)
		}
	}
	for _, m := range good {
		if _, err := s.MessageGet(ctx, m.Message.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("message %s of the lost group was stored (MessageGet: %v)", m.Message.ID, err)
		}
	}
	// The writer recovers.
	if _, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: good, Now: t0}); err != nil {
		t.Fatalf("MessagesAccept after a lost group: %v", err)
	}
}

func TestWritesAreSerialised(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()
	// Many concurrent writers of every kind; the race detector and SQLite's own locking would
	// complain about any second writer.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				m := storetest.Message(t0)
				if _, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
					errs <- err
					return
				}
				got, err := s.MessageClaim(ctx, store.MessageClaimParams{Owner: fmt.Sprint(w), Stream: store.StreamTransactional,
					Limit: 3, Now: t0, LeaseUntil: t0.Add(time.Minute)})
				if err != nil {
					errs <- err
					return
				}
				var fin []store.MessageFinishParams
				for _, c := range got {
					fin = append(fin, store.MessageFinishParams{ID: c.ID, Owner: fmt.Sprint(w), Status: store.StatusSent,
						Attempts: 1, SentAt: t0.Add(time.Duration(i) * time.Second)})
				}
				if n, err := s.MessageFinish(ctx, t0, fin); err != nil || n != len(fin) {
					errs <- fmt.Errorf("MessageFinish = %d of %d, %v", n, len(fin), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if commits := s.w.commits.Load(); commits == 0 {
		t.Error("no commits counted")
	}
}

// TestQueryPlans checks that the hot queries are answered from the intended indexes.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	list := func(p store.MessageListParams) (string, []any) { return listQuery(p, messageColumns) }
	for _, tc := range []struct {
		name  string
		q     string
		args  []any
		index string // must appear in the plan
	}{
		{"claim", qMessageClaim, []any{"w", 1, 1, "transactional", 1, 10}, "messages_claim"},
		{"claimed rows", qMessageClaimed, []any{`["msg_x"]`}, "id=?"},
		{"next due", qMessageNextDue, []any{"transactional"}, "messages_claim"},
		{"rescue", qRescue, []any{1}, "messages_lease"},
		{"rescue events", qRescueEvents, []any{1}, "messages_lease"},
		{"release", qRelease, []any{1, "w", "n/"}, "messages_"},
		{"events", qEventsGet, []any{"msg_x"}, "message_events_message"},
		{"idempotency purge", qIdempotencyPurge, []any{1}, "idempotency_keys_expires"},
		{"renew", qMessageRenew, []any{1, `["msg_x"]`, "w"}, "id=?"},
		{"retry", qRetry, []any{1, `["msg_x"]`, 2}, "id=?"},
		{"retry events", qRetryEvents, []any{1, `["msg_x"]`}, "id=?"},
		{"suppression get", qSuppressionGet, []any{"a@example.com", 1, "global"}, "PRIMARY KEY"},
		{"suppression match", qSuppressionMatch, []any{`["a@example.com"]`, 1, `["global","broadcast"]`}, "PRIMARY KEY"},
		{"suppression delete", qSuppressionDelete, []any{"a@example.com", "global"}, "PRIMARY KEY"},
		{"webhook claim", qDeliveryClaim, []any{"w", 2, 1, 10, "[]"}, "webhook_deliveries_due"},
		{"webhook next due", qDeliveryNextDue, nil, "webhook_deliveries_due"},
		{"webhook list", qDeliveryList, []any{"whk_x", "", "", 0, 10}, "webhook_deliveries_endpoint"},
		{"webhook replay", qDeliveryReplay, []any{"whk_x", 1, 2, 3, `["failed"]`}, "webhook_deliveries_endpoint"},
		{"webhook purge", qDeliveryPurge, []any{1, 10}, "webhook_deliveries_done"},
		{"webhook report", qOutboxInsert, []any{"message.sent", "msg_x", "", "", "", 1, nil, 1}, "PRIMARY KEY"},
		{"webhook message report", qOutboxMessage, []any{"message.sent", "msg_x", 1, nil, 1, ""}, "PRIMARY KEY"},
		{"webhook run cancel", qRunCancelWebhooks, []any{"run_x", 1}, "messages_run"},
	} {
		plan := explain(t, s, tc.q, tc.args...)
		if !strings.Contains(plan, tc.index) || fullScan(plan) {
			t.Errorf("%s: plan does not use %s:\n%s", tc.name, tc.index, plan)
		}
	}
	for _, tc := range []struct {
		name  string
		p     store.MessageListParams
		index string
	}{
		{"list", store.MessageListParams{}, "sqlite_autoindex_messages_1"},
		{"list cursor", store.MessageListParams{Cursor: "msg_x"}, "sqlite_autoindex_messages_1"},
		{"list status", store.MessageListParams{Statuses: []store.Status{store.StatusFailed}, Cursor: "msg_x"}, "messages_status"},
		{"list recipient", store.MessageListParams{Recipient: "a@example.com"}, "message_recipients_email"},
		{"list campaign", store.MessageListParams{CampaignID: "cmp_1"}, "messages_campaign"},
		{"list tag", store.MessageListParams{Tag: "x", Stream: "broadcast"}, "sqlite_autoindex_messages_1"},
		{"list error code", store.MessageListParams{ErrorCode: "550"}, "messages_error_code"},
		{"list enhanced code", store.MessageListParams{ErrorCode: "5.1.1"}, "messages_error_enhanced"},
		{"list enhanced prefix", store.MessageListParams{ErrorCode: "5.1."}, "messages_error_enhanced"},
	} {
		q, args := list(tc.p)
		plan := explain(t, s, q, args...)
		if !strings.Contains(plan, tc.index) || fullScan(plan) {
			t.Errorf("%s: plan does not use %s:\n%s", tc.name, tc.index, plan)
		}
	}
	for _, tc := range []struct {
		name  string
		p     store.InboundListParams
		after int64
		index string
	}{
		{"inbound by kind", store.InboundListParams{Kind: "dsn"}, 0, "inbound_entries_kind"},
		{"inbound by kind, page", store.InboundListParams{Kind: "dsn"}, 7, "inbound_entries_kind"},
		{"inbound by outcome", store.InboundListParams{Outcome: store.InboundIgnored}, 7, "inbound_entries_outcome"},
		{"inbound page", store.InboundListParams{}, 7, "PRIMARY KEY"},
	} {
		q, args := driverkit.InboundListQuery(inboundColumns, tc.p, tc.after, 10, dialect{}.Placeholder)
		plan := explain(t, s, q, args...)
		if !strings.Contains(plan, tc.index) || fullScan(plan) {
			t.Errorf("%s: plan does not use %s:\n%s", tc.name, tc.index, plan)
		}
	}
}

// TestSuppressionListPlans checks that every page of SuppressionList is read from an index in
// the listing's order (no sort of the whole table).
func TestSuppressionListPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	cursor := store.SuppressionCursor(store.Suppression{CreatedAt: time.UnixMicro(1), Email: "a@example.com"})
	for _, tc := range []struct {
		name  string
		p     store.SuppressionListParams
		index string
	}{
		{"all", store.SuppressionListParams{}, "suppressions_created"},
		{"cursor", store.SuppressionListParams{Cursor: cursor, Now: time.Unix(1, 0)}, "suppressions_created"},
		{"reason", store.SuppressionListParams{Reason: store.ReasonManual, Cursor: cursor}, "suppressions_reason"},
		{"scope", store.SuppressionListParams{Scope: "lst_x", Cursor: cursor}, "suppressions_scope"},
		// One address has one row per scope, a handful: sorting them is no cost.
		{"email", store.SuppressionListParams{Email: "a@example.com"}, "PRIMARY KEY (email=?)"},
	} {
		q, args, err := suppressionListQuery(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		plan := explain(t, s, q, args...)
		sorted := strings.Contains(plan, "TEMP B-TREE") && tc.name != "email"
		if !strings.Contains(plan, tc.index) || fullScan(plan) || sorted {
			t.Errorf("%s: plan does not read %s in order:\n%s", tc.name, tc.index, plan)
		}
	}
}

func explain(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", q, err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var (
			id, parent, notused int
			detail              string
		)
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// fullScan reports whether a plan reads a whole table without an index (json_each is a virtual
// table over one row's value, not a table scan).
func fullScan(plan string) bool {
	for line := range strings.SplitSeq(plan, "\n") {
		if strings.HasPrefix(line, "SCAN ") && !strings.Contains(line, "INDEX") &&
			!strings.Contains(line, "json_each") && !strings.Contains(line, "CONSTANT ROW") {
			return true
		}
	}
	return false
}

// pageSize reads the page size from a database file's header (offset 16, big-endian; 1 means
// 65536).
func pageSize(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 18 {
		t.Fatalf("reading %s: %d bytes, %v", path, len(b), err)
	}
	return int(binary.BigEndian.Uint16(b[16:18]))
}

// TestPageSize: a database postie creates has 8 KiB pages (see dsn); one created before, with
// SQLite's default 4 KiB, keeps its pages and works as before.
func TestPageSize(t *testing.T) {
	t.Parallel()
	fresh := openTest(t)
	if got := pageSize(t, fresh.Path()); got != 8192 {
		t.Errorf("new database: page size %d, want 8192", got)
	}

	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err == nil {
		_, err = db.Exec("CREATE TABLE before_postie (x)")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	old := openAt(t, path, Options{Migrate: true})
	m := storetest.Message(t0)
	if _, err := old.MessagesAccept(t.Context(), store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatalf("MessagesAccept: %v", err)
	}
	if raw, err := old.MessageRaw(t.Context(), m.Message.ID); err != nil || !bytes.Equal(raw, m.Raw) {
		t.Errorf("MessageRaw = %q, %v", raw, err)
	}
	if got := pageSize(t, path); got != 4096 {
		t.Errorf("existing database: page size %d, want 4096 kept", got)
	}
}

// TestPurgeDuePlans: the retention purges read what is due from the front of their partial
// indexes, in order, not every finished message sorted (a read as long as the history, which
// would also keep the WAL from starting over).
func TestPurgeDuePlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	for q, index := range map[string]string{qBodyPurgeDue: "messages_body_due", qMessagePurgeDue: "messages_finished"} {
		plan := explain(t, s, q, int64(1), int64(500))
		if !strings.Contains(plan, "USING INDEX "+index) || strings.Contains(plan, "TEMP B-TREE") || fullScan(plan) {
			t.Errorf("plan does not read %s in order:\n%s", index, plan)
		}
	}
}
