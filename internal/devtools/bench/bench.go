// Package bench measures a real postie server: it starts `postie serve` as a child process on a
// fresh embedded database and a loopback port, drives it over HTTP like a client service would,
// and reports throughput, latency percentiles and the server's peak RSS (VmHWM). Running the
// server in its own process keeps the load generator out of the RSS figure; both share the
// machine's cores, as they would on a small VM.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/config"
)

// Config selects what to measure.
type Config struct {
	Binary      string        // the postie executable to start
	Duration    time.Duration // per scenario
	Clients     int           // concurrent clients for single accepts
	BatchSize   int           // messages per batch request
	BatchConns  int           // concurrent clients for batch accepts
	DataDir     string        // where the server's database goes ("" → a temp dir)
	Out         io.Writer
	ExtraEnv    []string // passed to the server
	KeepDataDir bool
	// DatabaseURL, when a postgres:// URL, runs the servers on PostgreSQL: each run gets a fresh
	// database created on that server (and dropped after). "" runs on a fresh SQLite file.
	DatabaseURL string
	// Nodes is how many `postie serve` processes share the database (PostgreSQL only; 0 or 1:
	// one). Clients spread their requests over them round-robin.
	Nodes int
	// NodeEnv, when set, gives node i (counted from 0) more environment, after ExtraEnv.
	NodeEnv func(i int) []string
	// Logs, when set, is given each line the nodes log (on one goroutine per node); lines at
	// level WARN or ERROR still go to the bench's stderr.
	Logs func(line string)
}

// Result of one scenario.
type Result struct {
	Name       string
	Requests   int64
	Messages   int64
	Errors     int64
	Elapsed    time.Duration
	P50, P99   time.Duration
	PeakRSSKiB int64
}

// MessagesPerSecond is accepted messages per second.
func (r Result) MessagesPerSecond() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

// Run starts the server and runs the accept scenarios.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	srv, err := startServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	client := newClient()

	single := message(0)
	var results []Result
	fmt.Fprintf(cfg.Out, "single accepts: %d clients for %s …\n", cfg.Clients, cfg.Duration)
	r, err := load(ctx, client, srv, "single accept", cfg.Clients, cfg.Duration, "/v1/messages", func(int) ([]byte, int) { return single, 1 })
	if err != nil {
		return nil, err
	}
	results = append(results, r)

	items := make([]json.RawMessage, cfg.BatchSize)
	for i := range items {
		items[i] = message(i)
	}
	batch, _ := json.Marshal(map[string]any{"messages": items})
	fmt.Fprintf(cfg.Out, "batch accepts: %d clients × %d messages for %s …\n", cfg.BatchConns, cfg.BatchSize, cfg.Duration)
	r, err = load(ctx, client, srv, fmt.Sprintf("batch accept (%d/request)", cfg.BatchSize), cfg.BatchConns, cfg.Duration, "/v1/messages/batch", func(int) ([]byte, int) { return batch, cfg.BatchSize })
	if err != nil {
		return nil, err
	}
	results = append(results, r)
	return results, nil
}

// message is a small realistic transactional message (≈1 KB of MIME).
func message(i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"from":     "Shop <orders@shop.example>",
		"to":       []string{fmt.Sprintf("customer%d@example.com", i)},
		"subject":  "Your order has shipped",
		"html":     "<p>Hello,</p><p>your order <b>A-1042</b> is on its way. Track it at <a href=\"https://shop.example/t/A-1042\">shop.example</a>.</p><p>Thanks for shopping with us.</p>",
		"tags":     []string{"orders", "shipping"},
		"metadata": map[string]string{"order_id": "A-1042"},
	})
	return b
}

// server is the postie under test: one `postie serve` process, or several sharing one
// PostgreSQL database.
type server struct {
	nodes   []*node
	next    atomic.Uint64 // round-robin over the nodes
	key     string
	dataDir string
	keep    bool
	dropDB  func() error // drops the PostgreSQL database of the run; nil on SQLite
	dbURL   string       // the PostgreSQL database of the run; "" on SQLite
	nodeURL string       // the database URL the nodes are given (sqlite:… or dbURL)

	stopOnce sync.Once
}

// node is one `postie serve` process.
type node struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
}

func startServer(ctx context.Context, cfg Config) (*server, error) {
	s := &server{key: "bench-key-0123456789abcdef", keep: cfg.KeepDataDir || cfg.DataDir != ""}
	var dbURL string
	if db, err := (&config.Config{DatabaseURL: cfg.DatabaseURL}).Database(); err == nil && db.Driver == "postgres" {
		u, drop, err := app.CreatePostgresDatabase(ctx, cfg.DatabaseURL, "postie_bench")
		if err != nil {
			return nil, err
		}
		dbURL, s.dropDB, s.dbURL = u, drop, u
	} else {
		if cfg.DatabaseURL != "" {
			return nil, errors.New("the database URL must be a postgres:// URL (SQLite runs on a fresh file by default)")
		}
		if cfg.Nodes > 1 {
			return nil, errors.New("several nodes need PostgreSQL: only one process may use a SQLite file")
		}
		s.dataDir = cfg.DataDir
		if s.dataDir == "" {
			d, err := os.MkdirTemp("", "postie-bench-")
			if err != nil {
				return nil, err
			}
			s.dataDir = d
		}
		dbURL = "sqlite:" + filepath.Join(s.dataDir, "postie.db")
	}
	s.nodeURL = dbURL
	if err := s.startNodes(ctx, cfg); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startNodes starts cfg.Nodes processes (at least one) on the server's database.
func (s *server) startNodes(ctx context.Context, cfg Config) error {
	for i := range max(1, cfg.Nodes) {
		c := cfg
		if cfg.NodeEnv != nil {
			c.ExtraEnv = append(slices.Clip(cfg.ExtraEnv), cfg.NodeEnv(i)...)
		}
		n, err := startNode(ctx, c, s.nodeURL, s.key)
		if n != nil {
			s.nodes = append(s.nodes, n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// restart stops the nodes, keeping their database, and starts cfg.Nodes fresh ones on it: a
// phase measured after a set-up phase starts with new processes (their peak RSS its own).
func (s *server) restart(ctx context.Context, cfg Config) error {
	s.stopNodes()
	s.nodes = nil
	return s.startNodes(ctx, cfg)
}

func startNode(ctx context.Context, cfg Config, dbURL, key string) (*node, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, cfg.Binary, "serve")
	cmd.Env = append(os.Environ(),
		"POSTIE_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"POSTIE_DATABASE_URL="+dbURL,
		"POSTIE_API_KEY="+key,
		"POSTIE_LOG_LEVEL=warn",
		"POSTIE_POSTAL_ADDRESS=postie bench, 1 Test Street",
		"POSTIE_ADMIN_LISTEN=127.0.0.1:0", // several nodes run on one machine
	)
	cmd.Env = append(cmd.Env, cfg.ExtraEnv...)
	cmd.Stdout = io.Discard
	var logs io.ReadCloser
	if cfg.Logs == nil {
		cmd.Stderr = os.Stderr
	} else {
		var err error
		if logs, err = cmd.StderrPipe(); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	read := make(chan struct{})
	if logs != nil {
		go func() {
			defer close(read)
			sc := bufio.NewScanner(logs)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					fmt.Fprintln(os.Stderr, line)
				}
				cfg.Logs(line)
			}
			_, _ = io.Copy(io.Discard, logs)
		}()
	} else {
		close(read)
	}
	// Wait must not run before the log pipe is read to its end (it closes the pipe).
	go func() { <-read; _ = cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(n.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n, nil
			}
		}
		select {
		case <-n.done:
			return n, errors.New("the postie server exited during start-up")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return n, errors.New("the postie server did not become ready within 30s")
		}
	}
}

// stop ends the servers and removes their database unless it is kept. Only the first call
// does anything.
func (s *server) stop() {
	s.stopOnce.Do(s.stopNow)
}

func (s *server) stopNow() {
	s.stopNodes()
	if s.dropDB != nil {
		if err := s.dropDB(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
	if !s.keep && s.dataDir != "" {
		_ = os.RemoveAll(s.dataDir)
	}
}

// stopNodes interrupts the nodes and waits for them to exit (killing one that takes more than
// 30 s).
func (s *server) stopNodes() {
	for _, n := range s.nodes {
		_ = n.cmd.Process.Signal(os.Interrupt)
	}
	for _, n := range s.nodes {
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	}
}

// peakRSS is the sum over the nodes of their high-water RSS in KiB, read from /proc (0 where
// unavailable).
func (s *server) peakRSS() int64 {
	var sum int64
	for _, n := range s.nodes {
		sum += n.peakRSS()
	}
	return sum
}

// peakRSS is the node's high-water RSS in KiB, read from /proc (0 where unavailable).
func (n *node) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// cpuTime is the CPU time (user and system) the nodes have used so far (0 where unavailable).
func (s *server) cpuTime() time.Duration {
	var sum time.Duration
	for _, n := range s.nodes {
		sum += procCPU(n.cmd.Process.Pid)
	}
	return sum
}

// procCPU is the CPU time (user and system) process pid has used so far, read from
// /proc/PID/stat (0 where unavailable). /proc counts it in USER_HZ ticks, 100 a second on every
// Linux architecture.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) <= 12 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100)
}

// selfCPU is the CPU time this process (load generator and sink) has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load runs `clients` loops posting body to path for d and gathers latencies.
func load(ctx context.Context, client *http.Client, s *server, name string, clients int, d time.Duration, path string, body func(int) ([]byte, int)) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var reqs, msgs, errs atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				b, n := body(i)
				t0 := time.Now()
				_, err := s.post(context.WithoutCancel(ctx), client, path, b)
				if err == nil || !errors.Is(err, errTransport) {
					lat[c] = append(lat[c], time.Since(t0))
					reqs.Add(1)
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				msgs.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	r := Result{Name: name, Requests: reqs.Load(), Messages: msgs.Load(), Errors: errs.Load(), Elapsed: elapsed, PeakRSSKiB: s.peakRSS()}
	r.P50, r.P99, _ = percentiles(all)
	if r.Errors > 0 {
		return r, fmt.Errorf("%s: %d of %d requests failed, first: %v", name, r.Errors, r.Requests, firstErr.Load())
	}
	return r, nil
}

// errTransport marks a request that got no HTTP answer at all.
var errTransport = errors.New("no answer")

// post sends body to path with the server's API key and returns the answer's body; a request
// without an answer fails with errTransport, a non-2xx answer with its status and body.
func (s *server) post(ctx context.Context, client *http.Client, path string, body []byte) ([]byte, error) {
	return s.do(ctx, client, http.MethodPost, path, body)
}

func (s *server) do(ctx context.Context, client *http.Client, method, path string, body []byte) ([]byte, error) {
	base := s.nodes[int(s.next.Add(1)%uint64(len(s.nodes)))].base
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errTransport, err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errTransport, err)
	}
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("%s %s: %s: %.200s", method, path, resp.Status, out)
	}
	return out, nil
}

// newClient is an HTTP client that keeps a connection per concurrent client.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
	}, Timeout: 120 * time.Second}
}

// percentiles sorts d and returns its median, 99th percentile and maximum (zero when empty).
func percentiles(d []time.Duration) (p50, p99, maxd time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	return d[len(d)*50/100], d[min(len(d)-1, len(d)*99/100)], d[len(d)-1]
}

// Print writes results as a Markdown table.
func Print(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| scenario | requests | messages | messages/s | p50 | p99 | server peak RSS |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s | %d MiB |\n", r.Name, r.Requests, r.Messages,
			r.MessagesPerSecond(), r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.PeakRSSKiB/1024)
	}
}

// freeAddrs returns n free loopback addresses (host:port), one per node.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, max(1, n))
	for i := range addrs {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
	}
	return addrs, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
