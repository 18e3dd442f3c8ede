package main_test

// Memory of the real binary under large requests and slow readers, measured as the server
// process's peak RSS (VmHWM in /proc/PID/status). These are measurements with generous bounds,
// not unit tests: they move hundreds of megabytes, so they run only when POSTIE_MEMORY_TEST=1
// (see docs/BENCHMARKS.md, "Memory under large requests"). POSTIE_MEMORY_BINARY measures another
// build (e.g. an older commit) instead of this one.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const memKey = "pk_memory_test_key_0123456789"

// plainBinary is postie built without the race detector (which multiplies memory), or
// POSTIE_MEMORY_BINARY when set.
func plainBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("POSTIE_MEMORY_BINARY"); b != "" {
		return b
	}
	return plainBuild.get(t)
}

func memoryTest(t *testing.T) {
	t.Helper()
	if os.Getenv("POSTIE_MEMORY_TEST") != "1" {
		t.Skip("set POSTIE_MEMORY_TEST=1 to measure memory (moves hundreds of MB; see docs/BENCHMARKS.md)")
	}
}

// startPlain starts `postie serve` from plainBinary with the capture transport.
func startPlain(t *testing.T, env ...string) *proc {
	t.Helper()
	return startBinary(t, plainBinary(t), t.TempDir(), append([]string{"POSTIE_API_KEY=" + memKey,
		"POSTIE_FROM=mem@postie.example", "POSTIE_LOG_LEVEL=warn"}, env...)...)
}

// memStatus returns a field of /proc/PID/status in bytes (VmHWM, VmRSS).
func (p *proc) memStatus(field string) int64 {
	p.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				p.t.Fatal(err)
			}
			return kb << 10
		}
	}
	p.t.Fatalf("no %s in /proc/PID/status", field)
	return 0
}

// sockets counts the server's open sockets.
func (p *proc) sockets() int {
	p.t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		p.t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(dir + "/" + fd.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// sampleRSS samples the server's RssAnon and RssFile every 20 ms until the returned function
// is called, which reports the highest of each.
func (p *proc) sampleRSS() (stop func() string) {
	done := make(chan struct{})
	var anon, file int64
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
			if err != nil {
				continue
			}
			for line := range strings.Lines(string(b)) {
				f := strings.Fields(line)
				if len(f) < 2 {
					continue
				}
				v, _ := strconv.ParseInt(f[1], 10, 64)
				switch f[0] {
				case "RssAnon:":
					anon = max(anon, v<<10)
				case "RssFile:":
					file = max(file, v<<10)
				}
			}
		}
	}()
	return func() string {
		close(done)
		return fmt.Sprintf("RssAnon %d MiB, RssFile %d MiB", anon>>20, file>>20)
	}
}

// bigMessage is a message with an attachment of n random octets (incompressible), as JSON.
// A scheduled one is due in an hour, so that delivery does not read it back meanwhile.
func bigMessage(n int, scheduled bool) map[string]any {
	content := make([]byte, n)
	_, _ = rand.Read(content)
	m := map[string]any{
		"to": []string{"big@example.com"}, "subject": "large", "text": "see the attachment",
		"attachments": []map[string]any{{"filename": "big.bin", "content": base64.StdEncoding.EncodeToString(content)}},
	}
	if scheduled {
		m["send_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	}
	return m
}

// postUntilStored posts body to path until it is answered other than 503, honouring
// Retry-After, and returns the final status and how many 503s came first.
func (p *proc) postUntilStored(path string, body []byte) (int, int, error) {
	for busy := 0; ; busy++ {
		req, _ := http.NewRequest("POST", "http://"+p.addr+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+memKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, busy, err
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			if resp.StatusCode >= 300 {
				return resp.StatusCode, busy, fmt.Errorf("%s: %d %.300s", path, resp.StatusCode, out)
			}
			return resp.StatusCode, busy, nil
		}
		if busy > 200 {
			return resp.StatusCode, busy, fmt.Errorf("still 503 after %d tries: %.300s", busy, out)
		}
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		// The client honours the server's Retry-After, as a well-behaved client would.
		time.Sleep(time.Duration(max(wait, 1)) * time.Second)
	}
}

// TestMemoryLargeRequests sends 16 concurrent 25 MB messages, and then four concurrent 50 MB
// batches, each to a fresh server, and bounds the server's peak RSS. Every request is stored in
// the end (a 503 is retried after its Retry-After).
func TestMemoryLargeRequests(t *testing.T) {
	memoryTest(t)
	one, err := json.Marshal(bigMessage(18<<20, false)) // 24 MiB of base64: a MIME just under 25 MB
	if err != nil {
		t.Fatal(err)
	}
	later, _ := json.Marshal(bigMessage(18<<20, true))
	batch := fmt.Appendf(nil, `{"messages":[%s,%s]}`, one, one)
	for _, tc := range []struct {
		name    string
		path    string
		body    []byte
		clients int
		bound   int64
	}{
		{"16 messages of 25 MB", "/v1/messages", one, 16, 600 << 20},
		{"16 messages of 25 MB due later", "/v1/messages", later, 16, 600 << 20},
		{"4 batches of 50 MB", "/v1/messages/batch", batch, 4, 600 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPlain(t, "GODEBUG="+os.Getenv("POSTIE_MEMORY_GCTRACE"))
			base := p.memStatus("VmRSS")
			stop := p.sampleRSS()
			var wg sync.WaitGroup
			var busy atomic.Int64
			errs := make(chan error, tc.clients)
			begin := time.Now()
			for range tc.clients {
				wg.Go(func() {
					_, n, err := p.postUntilStored(tc.path, tc.body)
					busy.Add(int64(n))
					if err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			peak := p.memStatus("VmHWM")
			t.Logf("highest sampled: %s", stop())
			if os.Getenv("POSTIE_MEMORY_GCTRACE") != "" {
				t.Logf("server stderr:\n%s", p.errOut())
			}
			t.Logf("%s: %d × %.1f MB stored in %v (%d answers 503 first); server RSS at start %d MiB, peak %d MiB",
				tc.name, tc.clients, float64(len(tc.body))/1e6, time.Since(begin).Round(time.Millisecond),
				busy.Load(), base>>20, peak>>20)
			if peak > tc.bound {
				t.Errorf("peak RSS %d MiB, want under %d MiB", peak>>20, tc.bound>>20)
			}
		})
	}
}

// TestMemorySlowReaders asks 60 connections for the /raw of a 25 MB message and reads none of
// them. The server must not hold 60 copies of it, and must drop each connection once its write
// deadline (POSTIE_WRITE_TIMEOUT, 5 s here) has passed.
func TestMemorySlowReaders(t *testing.T) {
	memoryTest(t)
	const clients = 60
	p := startPlain(t, "POSTIE_WRITE_TIMEOUT=5s")
	body, _ := json.Marshal(bigMessage(18<<20, false))
	if _, _, err := p.postUntilStored("/v1/messages", body); err != nil {
		t.Fatal(err)
	}
	code, out := p.request("GET", "/v1/messages?limit=1", memKey, nil)
	var page struct {
		Data []struct {
			ID   string `json:"id"`
			Size int    `json:"size"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &page); code != 200 || err != nil || len(page.Data) != 1 {
		t.Fatalf("listing: %d %s", code, out)
	}
	msg := page.Data[0]
	base := p.memStatus("VmRSS")
	sockets := p.sockets()

	conns := make([]*net.TCPConn, clients)
	for i := range conns {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		_ = tc.SetReadBuffer(4096) // the kernel holds little for a client that does not read
		t.Cleanup(func() { tc.Close() })
		fmt.Fprintf(tc, "GET /v1/messages/%s/raw HTTP/1.1\r\nHost: postie\r\nAuthorization: Bearer %s\r\n\r\n", msg.ID, memKey)
		conns[i] = tc
	}
	// Watch the server for a few seconds while nobody reads.
	var rss int64
	for range 30 {
		rss = max(rss, p.memStatus("VmRSS"))
		time.Sleep(100 * time.Millisecond)
	}
	peak := p.memStatus("VmHWM")
	t.Logf("%d clients not reading a %.1f MB /raw: server RSS before %d MiB, highest sampled %d MiB, peak %d MiB",
		clients, float64(msg.Size)/1e6, base>>20, rss>>20, peak>>20)
	if peak > 600<<20 {
		t.Errorf("peak RSS %d MiB with %d clients not reading, want under 600 MiB", peak>>20, clients)
	}

	// Past the write deadline the server must have closed every one of them (and let go of what
	// their responses held): its sockets are back to what they were before.
	waitFor(t, 30*time.Second, func() error {
		if n := p.sockets(); n > sockets {
			return fmt.Errorf("the server still has %d sockets open, %d before the %d clients came", n, sockets, clients)
		}
		return nil
	})
	t.Logf("all %d connections closed by the server after the write timeout", clients)
}
