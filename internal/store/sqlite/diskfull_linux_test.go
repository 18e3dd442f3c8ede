package sqlite

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// TestDiskFull fills a small tmpfs under a real store: the accept that does not fit fails whole
// with store.ErrUnavailable (the API's 503: retry later) and stores nothing, every message
// accepted before it reads back intact, delivery bookkeeping fails the same way, and once there
// is room again the same store takes writes without being reopened. It needs to mount a tmpfs
// (root on Linux); elsewhere it is skipped.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=3m"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v); this test needs root", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	s := openAt(t, filepath.Join(dir, "postie.db"), Options{Migrate: true})
	ctx := t.Context()

	big := func() store.NewMessage {
		m := storetest.Message(t0)
		m.Raw = append(m.Raw, bytes.Repeat([]byte("0123456789abcdef"), 4<<10)...) // 64 KiB
		m.Message.Size = len(m.Raw)
		return m
	}
	var stored []store.NewMessage
	var err error
	for range 200 {
		batch := []store.NewMessage{big(), big()}
		if _, err = s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: batch, Now: t0}); err != nil {
			for _, m := range batch {
				if _, gerr := s.MessageGet(ctx, m.Message.ID); !errors.Is(gerr, store.ErrNotFound) {
					t.Errorf("message %s of the failed accept: MessageGet = %v, want ErrNotFound", m.Message.ID, gerr)
				}
			}
			break
		}
		stored = append(stored, batch...)
	}
	if err == nil {
		t.Fatal("200 accepts of 128 KiB fitted in a 3 MiB file system")
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("accept on a full disk: %v, want ErrUnavailable", err)
	}
	if len(stored) == 0 {
		t.Fatal("not even the first accept fitted")
	}
	t.Logf("disk full after %d messages: %v", len(stored), err)
	for _, m := range stored {
		raw, err := s.MessageRaw(ctx, m.Message.ID)
		if err != nil || !bytes.Equal(raw, m.Raw) {
			t.Fatalf("message %s accepted before the disk filled: %d bytes, %v", m.Message.ID, len(raw), err)
		}
	}

	// Delivery's bookkeeping needs room too: a claim rewrites pages through the WAL.
	p := store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 8, Now: t0, LeaseUntil: t0.Add(time.Minute)}
	if _, err := s.MessageClaim(ctx, p); err != nil && !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("claim on a full disk: %v, want success or ErrUnavailable", err)
	}

	// Room again (as after an operator frees space): the same store writes.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("growing the tmpfs: %v", err)
	}
	m := big()
	if _, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{m}, Now: t0}); err != nil {
		t.Fatalf("accept once there is room again: %v", err)
	}
	if got, err := s.MessageGet(ctx, m.Message.ID); err != nil || got.Status != store.StatusQueued {
		t.Fatalf("message accepted after the disk was grown: %+v, %v", got, err)
	}
	p.Limit, p.Owner = 1000, "w2"
	claimed, err := s.MessageClaim(ctx, p)
	if err != nil || len(claimed) == 0 {
		t.Fatalf("claim once there is room again: %d, %v", len(claimed), err)
	}
	fin := make([]store.MessageFinishParams, len(claimed))
	for i, c := range claimed {
		fin[i] = store.MessageFinishParams{ID: c.ID, Owner: "w2", Status: store.StatusSent, Attempts: 1, SentAt: t0}
	}
	if n, err := s.MessageFinish(ctx, t0, fin); err != nil || n != len(fin) {
		t.Fatalf("finish once there is room again: %d of %d, %v", n, len(fin), err)
	}
}

// TestPingDiskFull: Ping (readiness) fails with store.ErrUnavailable while the database's file
// system has less than Options.MinFreeBytes free, where writes would fail for want of room,
// though the database still answers reads; it succeeds again once there is room. It needs to
// mount a tmpfs (root on Linux); elsewhere it is skipped.
func TestPingDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v); this test needs root", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	s := openAt(t, filepath.Join(dir, "postie.db"), Options{Migrate: true, MinFreeBytes: 2 << 20})
	ctx := t.Context()
	filler := filepath.Join(dir, "filler")
	for _, step := range []struct {
		name  string
		fill  bool // leave less than MinFreeBytes
		ready bool
	}{
		{"room", false, true},
		{"disk full", true, false},
		{"room again", false, true},
	} {
		if step.fill {
			fillTo(t, filler, 1<<20)
		} else {
			_ = os.Remove(filler)
		}
		err := s.Ping(ctx)
		if step.ready && err != nil || !step.ready && !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: Ping = %v, want ready %v", step.name, err, step.ready)
		}
		if _, err := s.MessageList(ctx, store.MessageListParams{Limit: 1}); err != nil {
			t.Errorf("%s: reading: %v", step.name, err)
		}
	}
}

// fillTo allocates a file at path that leaves about leave bytes free on its file system.
func fillTo(t *testing.T, path string, leave int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Bavail)*int64(st.Bsize) - leave
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Fatalf("allocating %d bytes: %v", size, err)
	}
}
