package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postie/postie/internal/devtools/smtpsink"
)

// TransactionalConfig selects the transactional benchmark: Clients clients each posting one
// message per request, back to back, for Duration, while the same server delivers them to a
// loopback SMTP sink over Pool connections.
type TransactionalConfig struct {
	Binary   string   // the postie executable to start
	ExtraEnv []string // passed to every server
	// DatabaseURL and Nodes: as in Config.
	DatabaseURL string
	Nodes       int

	Pool       int           // relay connections (postie's ?pool=N)
	RelayDelay time.Duration // as in DeliveryConfig
	Clients    int           // concurrent clients, one message per request
	Duration   time.Duration // how long the clients post
	Size       int           // MIME bytes per message, about (text and HTML parts)
}

// TransactionalResult is what one transactional run measured. CPU times cover the whole run,
// from the first POST until the sink has every accepted message, so dividing them by Accepted
// gives the cost of accepting and delivering one message.
type TransactionalResult struct {
	Clients   int
	Size      int // mean MIME bytes per message as the relay received it
	Accepted  int // 202s while the clients posted
	Delivered int // messages the sink had when the clients stopped
	Duration  time.Duration
	Drain     time.Duration // from the clients' stop until the sink had every accepted message

	AcceptP50, AcceptP99 time.Duration // POST → 202
	SinkP50, SinkP99     time.Duration // POST → the sink's 250

	ServerCPU   time.Duration // the postie node(s)
	BenchCPU    time.Duration // this process: load generator and sink
	DatabaseCPU time.Duration // PostgreSQL processes serving the run's database (0 on SQLite)
	DatabasePID int           // how many PostgreSQL processes DatabaseCPU sums
}

// PerMessage is d divided by the accepted messages.
func (r TransactionalResult) PerMessage(d time.Duration) time.Duration {
	if r.Accepted == 0 {
		return 0
	}
	return d / time.Duration(r.Accepted)
}

// RunTransactional runs the transactional benchmark once.
func RunTransactional(ctx context.Context, cfg TransactionalConfig) (TransactionalResult, error) {
	res := TransactionalResult{Clients: cfg.Clients, Duration: cfg.Duration}
	tr := newTracker("tx-")
	var bytesIn atomic.Int64
	sink, srv, err := startPhase(ctx, DeliveryConfig{Binary: cfg.Binary, ExtraEnv: cfg.ExtraEnv, DatabaseURL: cfg.DatabaseURL,
		Nodes: cfg.Nodes, Pool: cfg.Pool, RelayDelay: cfg.RelayDelay}, func(m smtpsink.Message) {
		bytesIn.Add(int64(m.Size))
		tr.arrived(m)
	})
	if err != nil {
		return res, err
	}
	defer sink.Close()
	defer srv.stop()
	db, err := newDBCPU(ctx, srv.dbURL)
	if err != nil {
		return res, err
	}
	defer db.close()

	client := newClient()
	msg := newMessage(cfg.Size, "transactional")
	serverCPU, benchCPU := srv.cpuTime(), selfCPU()
	if err := db.sample(ctx); err != nil {
		return res, err
	}
	lat, err := closedLoop(ctx, cfg.Clients, cfg.Duration, func(i int, t0 time.Time) error {
		tr.began(i, t0)
		_, err := srv.post(ctx, client, "/v1/messages", msg.with(tr.addr(i)))
		if err != nil {
			tr.forget(i)
		}
		return err
	})
	stopped := time.Now()
	res.Delivered = sink.Count()
	if err != nil {
		return res, err
	}
	res.Accepted = len(lat)
	res.AcceptP50, res.AcceptP99, _ = percentiles(lat)
	if err := waitSink(ctx, sink, res.Accepted); err != nil {
		return res, err
	}
	res.Drain = time.Since(stopped)
	res.ServerCPU, res.BenchCPU = srv.cpuTime()-serverCPU, selfCPU()-benchCPU
	if res.DatabaseCPU, res.DatabasePID, err = db.since(ctx); err != nil {
		return res, err
	}
	res.SinkP50, res.SinkP99, _ = percentiles(tr.latencies())
	if res.Accepted > 0 {
		res.Size = int(bytesIn.Load() / int64(sink.Count()))
	}
	return res, nil
}

// PrintTransactional writes r as a Markdown table.
func PrintTransactional(w io.Writer, r TransactionalResult) {
	fmt.Fprintln(w, "| clients | MIME size | accepted/s | delivered/s | accept p50 / p99 | accept → sink 250 p50 / p99 | server CPU/msg | database CPU/msg | load generator + sink CPU/msg |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	dbCPU := "–"
	if r.DatabasePID > 0 {
		dbCPU = fmt.Sprintf("%d µs (%d processes)", r.PerMessage(r.DatabaseCPU).Microseconds(), r.DatabasePID)
	}
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	fmt.Fprintf(w, "| %d | %.1f KB | %.0f | %.0f | %s / %s | %s / %s | %d µs | %s | %d µs |\n", r.Clients, float64(r.Size)/1024,
		float64(r.Accepted)/r.Duration.Seconds(), float64(r.Delivered)/r.Duration.Seconds(),
		ms(r.AcceptP50), ms(r.AcceptP99), ms(r.SinkP50), ms(r.SinkP99),
		r.PerMessage(r.ServerCPU).Microseconds(), dbCPU, r.PerMessage(r.BenchCPU).Microseconds())
	fmt.Fprintf(w, "\n%d accepted in %s, %d delivered meanwhile, the rest within %s after.\n", r.Accepted, r.Duration,
		r.Delivered, r.Drain.Round(time.Millisecond))
}

// dbCPU follows the CPU time of the PostgreSQL processes that serve one database: its client
// backends (found in pg_stat_activity) and the server's own background processes (WAL writer,
// checkpointer, background writer, autovacuum), which do that database's writes. It reads
// /proc, so it sees a PostgreSQL server on this machine only; elsewhere it reports nothing.
type dbCPU struct {
	conn  *pgx.Conn // nil on SQLite
	start map[int]time.Duration
}

func newDBCPU(ctx context.Context, dbURL string) (*dbCPU, error) {
	if dbURL == "" {
		return &dbCPU{}, nil
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	return &dbCPU{conn: conn}, nil
}

func (d *dbCPU) close() {
	if d.conn != nil {
		_ = d.conn.Close(context.Background())
	}
}

// pids lists the processes serving the database, this monitoring connection left out.
func (d *dbCPU) pids(ctx context.Context) ([]int, error) {
	rows, err := d.conn.Query(ctx, `SELECT pid FROM pg_stat_activity
		WHERE pid <> pg_backend_pid()
		  AND (datname = current_database() OR backend_type IN ('walwriter', 'checkpointer', 'background writer', 'autovacuum launcher'))`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// sample records the processes' CPU time so far.
func (d *dbCPU) sample(ctx context.Context) error {
	if d.conn == nil {
		return nil
	}
	pids, err := d.pids(ctx)
	if err != nil {
		return err
	}
	d.start = map[int]time.Duration{}
	for _, p := range pids {
		d.start[p] = procCPU(p)
	}
	return nil
}

// since is the CPU time the processes used since sample, and how many processes it sums; a
// process that started since counts from zero, one that ended since is not counted.
func (d *dbCPU) since(ctx context.Context) (time.Duration, int, error) {
	if d.conn == nil {
		return 0, 0, nil
	}
	pids, err := d.pids(ctx)
	if err != nil {
		return 0, 0, err
	}
	var sum time.Duration
	n := 0
	for _, p := range pids {
		c := procCPU(p)
		if c == 0 {
			continue
		}
		sum += c - d.start[p]
		n++
	}
	return sum, n, nil
}

// closedLoop runs clients loops for d, each calling do back to back with a fresh sequence
// number (from 1) and the time it starts, until d has passed or a call fails. It returns the
// durations of the calls that succeeded, and the first failure.
func closedLoop(ctx context.Context, clients int, d time.Duration, do func(i int, t0 time.Time) error) ([]time.Duration, error) {
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var seq atomic.Int64
	var firstErr error
	var once sync.Once
	acc := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for lctx.Err() == nil {
				t0 := time.Now()
				if err := do(int(seq.Add(1)), t0); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				acc[c] = append(acc[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	var lat []time.Duration
	for _, a := range acc {
		lat = append(lat, a...)
	}
	return lat, firstErr
}
