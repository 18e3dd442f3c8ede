package main_test

// What a second process or a restarted one finds: one `postie serve` per SQLite file whatever
// path reaches it, and a node restarted on PostgreSQL under its node id takes back at once what
// its killed predecessor held.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// TestOneServePerSQLiteFile: while a node runs on a SQLite file, `postie serve` on the same file
// through a symlink, a symlinked directory, a hard link or a path with ".." exits at once with
// the clear error, before SQLite opens anything (no WAL beside the other name), and the first
// node goes on working.
func TestOneServePerSQLiteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, "POSTIE_API_KEY="+nodeKey)
	data := filepath.Join(dir, "postie-data")
	db := filepath.Join(data, "postie.db")

	other := t.TempDir()
	for _, link := range []func() error{
		func() error { return os.Symlink(db, filepath.Join(other, "symlink.db")) },
		func() error { return os.Symlink(data, filepath.Join(other, "data-link")) },
		func() error { return os.Link(db, filepath.Join(other, "hardlink.db")) },
		func() error { return os.Mkdir(filepath.Join(other, "sub"), 0o700) },
	} {
		if err := link(); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{
		"symlink.db",
		"data-link/postie.db",
		"hardlink.db",
		"sub/../../" + filepath.Base(dir) + "/postie-data/postie.db", // t.TempDir()s are siblings
		db,
	} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary(t), "serve")
			cmd.Dir = other
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "POSTIE_LISTEN=" + freeAddr(t), "POSTIE_ADMIN_LISTEN=127.0.0.1:0",
				"POSTIE_DATABASE_URL=sqlite:" + path, "POSTIE_API_KEY=" + nodeKey}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("second serve on %s: %v, want exit status 1; output:\n%s", path, err, out)
			}
			if !strings.Contains(string(out), store.ErrLocked.Error()) {
				t.Errorf("second serve on %s does not say the database is in use:\n%s", path, out)
			}
			abs := path
			if !filepath.IsAbs(abs) {
				abs = filepath.Join(other, path)
			}
			for _, suffix := range []string{"-wal", "-shm"} {
				fi, err := os.Stat(abs + suffix)
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				first, ferr := os.Stat(db + suffix)
				if err != nil || ferr != nil || !os.SameFile(fi, first) {
					t.Errorf("second serve on %s left a %s file of its own: %v %v", path, suffix, err, ferr)
				}
			}
		})
	}

	code, body := p.request("POST", "/v1/messages", nodeKey, map[string]any{
		"to": []string{"a@example.com"}, "from": "node@postie.example", "subject": "still here", "text": "hi"})
	if code != 202 {
		t.Fatalf("send after the refused starts: %d %s", code, body)
	}
	var acc struct{ ID string }
	_ = json.Unmarshal(body, &acc)
	p.waitStatus(nodeKey, acc.ID, "sent")
	p.stop()
}

// TestNodeRestartTakesBackItsLeases: a node on PostgreSQL with a 60 s lease is SIGKILLed while
// its messages hang at a relay; started again under the same POSTIE_NODE_ID, it takes them back
// as it starts (a released event naming the dead process, no lease_expired) and delivers them
// once each, instead of waiting for their leases to end.
func TestNodeRestartTakesBackItsLeases(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const total = 8
	var stall atomic.Bool
	stall.Store(true)
	r := &relay{seen: map[string]int{}, nodes: map[string]int{}}
	sink, err := smtpsink.Start(smtpsink.Options{
		Script: func(s smtpsink.Step) smtpsink.Action {
			if s.Stage == smtpsink.StageData && stall.Load() {
				return smtpsink.Action{Delay: time.Hour} // cut short by Close
			}
			return smtpsink.Action{}
		},
		OnMessage: func(m smtpsink.Message) {
			r.mu.Lock()
			r.seen[m.MessageID]++
			r.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	r.Sink = sink

	env := []string{"POSTIE_DATABASE_URL=" + url, "POSTIE_NODE_ID=restart-node", "POSTIE_LEASE=60s"}
	first := startNode(t, t.TempDir(), r, "node0.postie.test", env...)
	acceptAcross(t, []*proc{first}, total)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	st, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var held []store.Message
	waitFor(t, 30*time.Second, func() error {
		if held = leasedBy(ctx, t, st, first); len(held) != total {
			return errors.New("the first node has not claimed every message yet")
		}
		return nil
	})
	deadOwner := held[0].LeaseOwner
	if !strings.HasPrefix(deadOwner, "restart-node/") {
		t.Errorf("lease owner %q does not begin with the node id", deadOwner)
	}
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done
	stall.Store(false)

	second := startNode(t, t.TempDir(), r, "node0.postie.test", env...)
	r.waitCount(ctx, t, total)
	settled(t, second, time.Minute)
	second.stop()
	r.check(t, total, nil)

	for _, m := range held {
		events, err := st.MessageEvents(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		var released, sent bool
		for _, e := range events {
			var detail struct{ Owner string }
			_ = json.Unmarshal(e.Detail, &detail)
			switch {
			case e.Type == store.EventLeaseExpired:
				t.Errorf("message %s waited for its lease to expire: %+v", m.ID, events)
			case e.Type == store.EventReleased && detail.Owner == m.LeaseOwner:
				released = true
			case e.Type == store.EventSent:
				sent = released
			}
		}
		if !released || !sent {
			t.Errorf("message %s: released from %s %v, then sent %v; events %+v", m.ID, m.LeaseOwner, released, sent, events)
		}
	}
}
