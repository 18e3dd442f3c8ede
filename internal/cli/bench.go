package cli

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/postie/postie/internal/devtools/bench"
	"github.com/spf13/cobra"
)

func (e *env) benchCmd() *cobra.Command {
	cfg := bench.Config{}
	dcfg := bench.DeliveryConfig{}
	var size, rows, txClients, contacts, old int
	var mode, profileDir string
	var rounds, history, backlog, scrapes int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput, latency and memory of a real postie server",
		Long: "Starts `postie serve` (this same binary) as a child process on a fresh embedded database and a\n" +
			"loopback port, and prints Markdown tables for docs/BENCHMARKS.md. With --database-url postgres://…\n" +
			"it runs --nodes processes on a fresh PostgreSQL database instead.\n\n" +
			"--mode accept (default): drives the API over HTTP: single-message accepts from --clients\n" +
			"concurrent clients, then --batch-size-message batches from --batch-clients clients. Every\n" +
			"accepted message is committed durably (synchronous=FULL) before its answer.\n\n" +
			"--mode delivery: the server relays to a loopback SMTP sink in this process over --pool\n" +
			"connections. Throughput: --messages ≈10 KB and --large-messages ≈100 KB messages accepted in\n" +
			"batches and timed until the sink has them all, beside a bare SMTP client pushing the same MIME\n" +
			"to the same sink over as many connections (the ceiling). Latency: --latency-rate messages/s for\n" +
			"--duration, each from its POST to the sink's 250. Under load: --broadcast messages, then\n" +
			"transactional ones at --tx-rate while those drain. A zero count skips its phase.\n\n" +
			"--mode transactional: --clients clients each post one --size message per request, back to back,\n" +
			"for --duration, while the same server delivers them to the sink over --pool connections. Reports\n" +
			"accepted/s, delivered/s, POST → 202 and POST → sink 250 percentiles, and CPU per message of the\n" +
			"server, of this process (load generator and sink) and, on a local PostgreSQL, of its processes\n" +
			"serving the run's database.\n\n" +
			"--mode contacts: --batch-clients clients post batches of 1,000 new contacts (a name, three\n" +
			"attributes, an activity time) to /v1/contacts/batch for --duration, then the same contacts\n" +
			"again with changed attributes. Reports contacts upserted/s, latency per batch and server CPU.\n\n" +
			"--mode import: uploads a generated CSV of --rows contacts to POST /v1/imports (every row subscribed\n" +
			"to one list) and times it until the import is done, while --tx-clients clients post single\n" +
			"transactional messages. Reports rows/s, the server's peak RSS before and after, and the\n" +
			"transactional accept latency meanwhile.\n\n" +
			"--mode campaign: creates --contacts contacts on one list (through /v1/contacts/batch), restarts\n" +
			"the node(s), then starts a campaign of a personalised ≈10 KB HTML newsletter to the list, delivered\n" +
			"to the sink over --pool connections per node, while password resets are posted at --tx-rate.\n" +
			"Reports the time to the first message at the sink, recipients materialised/s, delivered msgs/s,\n" +
			"the nodes' peak RSS over the run, and the resets' POST → sink latency. --cpu-profile DIR saves\n" +
			"CPU profiles of every node, 10 s each, from the start of the run to its end.\n\n" +
			"--mode events: --clients clients each post one application event (order.paid) per request, back to\n" +
			"back, for --duration; a trigger sends each event's contact one transactional message, delivered to the\n" +
			"sink over --pool connections, and a webhook endpoint on a loopback receiver in this process gets every\n" +
			"message.sent. Reports events accepted/s (durable 202s), mails and webhooks received/s, and POST → 202,\n" +
			"POST → sink 250 and POST → webhook percentiles.\n\n" +
			"--mode submission: --clients SMTP connections to the node(s)' submission listener, each authenticated\n" +
			"once with the API key, send --size messages back to back for --duration, each with its own\n" +
			"Message-ID. Reports messages accepted/s (each committed before its 250), MAIL FROM → 250 percentiles,\n" +
			"and CPU per message of the server and of the clients.\n\n" +
			"--mode dsn: --messages messages are delivered to the sink, each recipient with its own bounce\n" +
			"address, then --clients SMTP connections send one hard-bounce DSN per message to the inbound\n" +
			"listener, back to back. Reports DSNs/s (each 250 after its bounce is committed), DATA → 250\n" +
			"percentiles and CPU per DSN.\n\n" +
			"--mode purge (SQLite): writes --old messages that finished 60 days ago, then delivers --tx-rate\n" +
			"transactional messages/s to the sink for --duration with retention out of reach, restarts the server\n" +
			"with POSTIE_RETAIN_BODIES and POSTIE_RETAIN_MESSAGES of 30 days and keeps delivering while it purges\n" +
			"them. Reports POST → relay 250 percentiles of both phases and the purge's duration.\n\n" +
			"--mode metrics: the transactional benchmark 2 × --rounds times, alternating POSTIE_METRICS=false and\n" +
			"true, each on a fresh database. Reports each run and the means: accepted/s and server CPU per\n" +
			"message with metrics on against off.\n\n" +
			"--mode scrape: stores --history finished messages and --backlog due ones (a bulk load by SQL of\n" +
			"copies of one message), starts a node on them and times --scrapes GET /metrics on its admin\n" +
			"listener, one after another: p50, p99 and max.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "postie bench on %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
			if cfg.DatabaseURL != "" {
				fmt.Fprintf(e.stdout, "on PostgreSQL, %d node(s), a fresh database per phase\n", max(1, cfg.Nodes))
			}
			switch mode {
			case "accept":
				cfg.Binary, cfg.Out = exe, e.stdout
				rs, err := bench.Run(cmd.Context(), cfg)
				bench.Print(e.stdout, rs)
				return err
			case "delivery":
				dcfg.Binary, dcfg.Out, dcfg.DatabaseURL, dcfg.Nodes = exe, e.stdout, cfg.DatabaseURL, cfg.Nodes
				dcfg.BatchSize, dcfg.BatchConns, dcfg.LatencyDuration = cfg.BatchSize, cfg.BatchConns, cfg.Duration
				rs, err := bench.RunDelivery(cmd.Context(), dcfg)
				bench.PrintDelivery(e.stdout, rs)
				return err
			case "transactional":
				tcfg := bench.TransactionalConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes,
					Pool: dcfg.Pool, RelayDelay: dcfg.RelayDelay, Clients: cfg.Clients, Duration: cfg.Duration, Size: size}
				fmt.Fprintf(e.stdout, "transactional: %d clients posting single %d-byte messages for %s, delivered over %d relay connections …\n",
					tcfg.Clients, tcfg.Size, tcfg.Duration, tcfg.Pool)
				r, err := bench.RunTransactional(cmd.Context(), tcfg)
				bench.PrintTransactional(e.stdout, r)
				return err
			case "contacts":
				ccfg := bench.ContactsConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes,
					Clients: cfg.BatchConns, BatchSize: 1000, Duration: cfg.Duration, Out: e.stdout}
				rs, err := bench.RunContacts(cmd.Context(), ccfg)
				bench.PrintContacts(e.stdout, rs)
				return err
			case "import":
				icfg := bench.ImportConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL, Rows: rows, TxClients: txClients}
				fmt.Fprintf(e.stdout, "import: %d rows, %d transactional clients meanwhile …\n", rows, txClients)
				r, err := bench.RunImport(cmd.Context(), icfg)
				bench.PrintImport(e.stdout, r)
				return err
			case "campaign":
				ccfg := bench.CampaignConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes, Out: e.stdout,
					Contacts: contacts, FillClients: cfg.BatchConns, Pool: dcfg.Pool, RelayDelay: dcfg.RelayDelay,
					TxRate: dcfg.TxRate, ProfileDir: profileDir}
				fmt.Fprintf(e.stdout, "campaign: %d contacts, %d relay connections per node, %.0f password resets/s meanwhile …\n",
					contacts, ccfg.Pool, ccfg.TxRate)
				r, err := bench.RunCampaign(cmd.Context(), ccfg)
				bench.PrintCampaign(e.stdout, r)
				return err
			case "events":
				ecfg := bench.EventsConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes,
					Pool: dcfg.Pool, RelayDelay: dcfg.RelayDelay, Clients: cfg.Clients, Duration: cfg.Duration}
				fmt.Fprintf(e.stdout, "events: %d clients posting single events for %s, each mailed over %d relay connections and reported to a webhook …\n",
					ecfg.Clients, ecfg.Duration, ecfg.Pool)
				r, err := bench.RunEvents(cmd.Context(), ecfg)
				bench.PrintEvents(e.stdout, r)
				return err
			case "submission":
				scfg := bench.SubmissionConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes,
					Clients: cfg.Clients, Duration: cfg.Duration, Size: size}
				if !cmd.Flags().Changed("size") {
					scfg.Size = 10 << 10
				}
				fmt.Fprintf(e.stdout, "submission: %d SMTP connections sending %d-byte messages for %s …\n", scfg.Clients, scfg.Size, scfg.Duration)
				r, err := bench.RunSubmission(cmd.Context(), scfg)
				bench.PrintSubmission(e.stdout, r)
				return err
			case "metrics":
				tcfg := bench.TransactionalConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes,
					Pool: dcfg.Pool, RelayDelay: dcfg.RelayDelay, Clients: cfg.Clients, Duration: cfg.Duration, Size: size}
				fmt.Fprintf(e.stdout, "metrics: %d × 2 transactional runs of %s (%d clients), POSTIE_METRICS off and on alternating …\n",
					rounds, tcfg.Duration, tcfg.Clients)
				rs, err := bench.RunMetricsOverhead(cmd.Context(), tcfg, rounds, e.stdout)
				bench.PrintMetricsOverhead(e.stdout, rs)
				return err
			case "scrape":
				r, err := bench.RunScrape(cmd.Context(), bench.ScrapeConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL,
					Messages: history, Backlog: backlog, Scrapes: scrapes, Out: e.stdout})
				if err == nil {
					bench.PrintScrape(e.stdout, r)
				}
				return err
			case "dsn":
				dscfg := bench.DSNConfig{Binary: exe, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes, Messages: dcfg.Messages,
					Clients: cfg.Clients, Pool: dcfg.Pool}
				fmt.Fprintf(e.stdout, "dsn: %d messages delivered, then bounced by DSNs over %d SMTP connections …\n", dscfg.Messages, dscfg.Clients)
				r, err := bench.RunDSN(cmd.Context(), dscfg)
				bench.PrintDSN(e.stdout, r)
				return err
			case "purge":
				if cfg.DatabaseURL != "" {
					return usageError{fmt.Errorf("--mode purge runs on SQLite only")}
				}
				pcfg := bench.PurgeConfig{Binary: exe, Out: e.stdout, Old: old, Size: size, TxRate: dcfg.TxRate,
					Duration: cfg.Duration, Pool: dcfg.Pool, DataDir: cfg.DataDir}
				r, err := bench.RunPurge(cmd.Context(), pcfg)
				bench.PrintPurge(e.stdout, r)
				return err
			}
			return usageError{fmt.Errorf("--mode must be accept, delivery, transactional, contacts, import, campaign, events, submission, dsn, purge, metrics or scrape, not %q", mode)}
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "accept", "accept: API accept throughput; delivery: through a loopback SMTP sink; transactional: single messages posted while they are delivered; contacts: contact upserts through the batch endpoint; import: a CSV import of --rows contacts; campaign: a campaign to --contacts contacts; events: application events, each mailed by a trigger and reported to a webhook; submission: messages over SMTP submission; dsn: bounce intake over SMTP; purge: transactional mail while retention purges old messages (SQLite)")
	f.IntVar(&contacts, "contacts", 1_000_000, "campaign: contacts in the campaign's audience")
	f.IntVar(&rounds, "rounds", 3, "metrics: pairs of runs (metrics off, then on)")
	f.IntVar(&history, "history", 10_000_000, "scrape: finished messages stored")
	f.IntVar(&backlog, "backlog", 100_000, "scrape: messages due and waiting")
	f.IntVar(&scrapes, "scrapes", 200, "scrape: GET /metrics timed")
	f.StringVar(&profileDir, "cpu-profile", "", "campaign: save CPU profiles of the node(s) during the run into this directory")
	f.IntVar(&rows, "rows", 1_000_000, "import: contacts in the generated CSV")
	f.IntVar(&old, "old", 1_000_000, "purge: old finished messages to purge")
	f.IntVar(&txClients, "tx-clients", 2, "import: clients posting transactional messages while the import runs (0: none)")
	f.IntVar(&size, "size", 8<<10, "transactional, submission: MIME bytes per message, about (submission: 10240 unless given)")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long each accept scenario (or the delivery latency phase) runs")
	f.IntVar(&cfg.Clients, "clients", 32, "concurrent clients sending single messages")
	f.IntVar(&cfg.BatchSize, "batch-size", 500, "messages per batch request")
	f.IntVar(&cfg.BatchConns, "batch-clients", 4, "concurrent clients sending batches")
	f.StringVar(&cfg.DataDir, "data-dir", "", "keep the server's database here (accept mode; default: a temp dir, removed after)")
	f.StringVar(&cfg.DatabaseURL, "database-url", "", "a postgres:// server to run on instead of SQLite: each phase creates a database there and drops it after (the role must be allowed to create databases)")
	f.IntVar(&cfg.Nodes, "nodes", 1, "postie processes sharing the PostgreSQL database; requests are spread over them")
	f.IntVar(&dcfg.Pool, "pool", 8, "delivery: relay connections (postie's ?pool= and the bare client's)")
	f.DurationVar(&dcfg.RelayDelay, "relay-delay", 0, "delivery: the sink holds its reply to each message this long, as a relay queueing it does (0: at once)")
	f.IntVar(&dcfg.Messages, "messages", 20000, "delivery: ≈10 KB messages in the throughput phase; dsn: messages sent, then bounced")
	f.IntVar(&dcfg.LargeMessages, "large-messages", 4000, "delivery: ≈100 KB messages in the throughput phase")
	f.Float64Var(&dcfg.LatencyRate, "latency-rate", 200, "delivery: messages per second in the latency phase")
	f.IntVar(&dcfg.Broadcast, "broadcast", 100000, "delivery: broadcast backlog for the transactional-under-load phase")
	f.Float64Var(&dcfg.TxRate, "tx-rate", 20, "delivery, campaign: transactional messages per second while the backlog drains (campaign: while the run delivers)")
	return cmd
}
