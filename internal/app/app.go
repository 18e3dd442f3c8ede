// Package app wires postie together: it opens the store, builds the transport, the delivery engine
// and the HTTP API from a Config, and starts and stops them in order. It holds no business logic.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/postie/postie/internal/web"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/audience/dbsync"
	"github.com/postie/postie/internal/audience/imports"
	"github.com/postie/postie/internal/campaign"
	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/delivery"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/inbound"
	"github.com/postie/postie/internal/inflight"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/notify"
	"github.com/postie/postie/internal/reputation"
	"github.com/postie/postie/internal/retention"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgadmin"
	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/templatedir"
	"github.com/postie/postie/internal/templates"
	"github.com/postie/postie/internal/transport"
	"github.com/postie/postie/internal/transport/capture"
	"github.com/postie/postie/internal/transport/smtp"
	"github.com/postie/postie/internal/webhook"
)

// OpenStore opens (and, when migrate is set, migrates) the database named by cfg: a SQLite file
// for sqlite:PATH, a PostgreSQL pool of cfg.DBPool connections for postgres:// and postgresql://.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger, migrate bool) (store.Store, error) {
	return openStore(ctx, cfg, log, migrate, nil)
}

// openStore is OpenStore, counting the SQLite writer's commits in m (nil: not counted).
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger, migrate bool, m *metrics.Metrics) (store.Store, error) {
	db, err := cfg.Database()
	if err != nil {
		return nil, err
	}
	switch db.Driver {
	case "sqlite":
		opts := sqlite.Options{Migrate: migrate, Logger: log}
		if m != nil {
			opts.OnCommit = m.SQLiteCommit
		}
		return sqlite.Open(ctx, db.Path, opts)
	case "postgres":
		return postgres.Open(ctx, postgres.Options{URL: db.URL, MaxConns: cfg.DBPool,
			StatementTimeout: cfg.DBStmtTimeout, Migrate: migrate, Logger: log})
	}
	return nil, fmt.Errorf("unknown database driver %q", db.Driver)
}

// CreatePostgresDatabase creates an empty database on the PostgreSQL server of serverURL for a
// tool that needs one of its own (postie bench), named prefix_<random>, and returns its URL
// and a function that drops it.
func CreatePostgresDatabase(ctx context.Context, serverURL, prefix string) (dbURL string, drop func() error, err error) {
	return pgadmin.CreateDatabase(ctx, serverURL, prefix)
}

// App is a running postie node.
type App struct {
	cfg       config.Config
	log       *slog.Logger
	store     store.Store
	transport transport.Transport
	engine    *delivery.Engine
	api       *httpapi.Server
	templates *templatedir.Loader // nil without POSTIE_TEMPLATES_DIR
	syncer    *dbsync.Syncer      // runs the sync sources due
	importer  *imports.Importer   // spools CSV uploads and runs this node's imports
	campaigns *campaign.Service   // starts campaign runs and works this node's
	notify    *notify.Service     // accepts events, matches triggers, works this node's actions
	webhooks  *webhook.Service    // webhook endpoints, and the sender of their deliveries
	public    *web.Handler
	keys      *audience.Keys
	links     *audience.Links
	verp      *mail.VERP // signs and checks bounce addresses
	listener  net.Listener
	// submission is the SMTP submission server on submissionListener (nil when off).
	submission         *inbound.Submission
	apiKeys            *apikey.Checker // the node's API key checks and rate limits
	submissionListener net.Listener
	inflight           *inflight.Budget // the bytes being received, over the API and SMTP
	// processor applies the reports that come back; intake is the bounce and complaint
	// listener on intakeListener (nil when off).
	processor      *inbound.Processor
	intake         *inbound.Intake
	intakeListener net.Listener

	// reputation keeps the streams' bounce and complaint rates and pauses broadcast when they
	// are too high.
	reputation *reputation.Service
	retention  *retention.Service // purges what is past its retention (POSTIE_RETAIN_*)

	// errors takes the panics recovered and the unexpected errors: the log, and Sentry when
	// POSTIE_SENTRY_DSN is set (then sentry is that reporter, flushed at shutdown).
	errors errtrack.Reporter
	sentry *errtrack.Sentry

	// metrics are this node's Prometheus collectors (nil with POSTIE_METRICS=false), served on
	// adminListener (POSTIE_ADMIN_LISTEN; nil when empty) or else by the API (admin.go).
	metrics       *metrics.Metrics
	adminListener net.Listener

	// GeneratedKey is the API key created on this start ("" when none was generated).
	GeneratedKey string
}

// New opens the store, ensures an API key exists, and builds the services. It listens on
// cfg.Listen but serves nothing until Run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	var m *metrics.Metrics
	if cfg.Metrics {
		m = metrics.New()
	}
	st, err := openStore(ctx, cfg, log, true, m)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, store: st, metrics: m}
	ok := false
	defer func() {
		if !ok {
			_ = st.Close()
		}
	}()
	if a.transport, err = newTransport(cfg, log, m); err != nil {
		return nil, err
	}

	// The keys of unsubscribe and confirmation links, and of erased addresses: configured, or
	// generated once and kept in the database.
	if a.keys, err = loadKeys(ctx, cfg, st); err != nil {
		return nil, err
	}
	a.links = audience.NewLinks(a.keys, cfg.BaseURL())

	// Bounce addresses (VERP) are signed with a key kept in the database.
	if a.verp, err = loadVERP(ctx, st, time.Now()); err != nil {
		return nil, err
	}
	a.processor = newProcessor(cfg, st, a.verp, log, m)

	node := nodeID(cfg)
	log.Info("node id (POSTIE_NODE_ID), the owner of this run's leases", "node_id", node)
	if err := a.setupErrors(node); err != nil {
		return nil, err
	}
	a.engine = delivery.New(delivery.Config{
		Store: st, Transport: a.transport, Owner: nodeOwner(node), Lease: cfg.Lease, RetryDelays: cfg.RetryDelays,
		ShutdownTimeout: cfg.ShutdownTimeout, Logger: log, ErasedKey: a.keys.ErasedKey,
		BounceAddress: bounceAddress(cfg, a.verp), Errors: a.errors, LogPII: cfg.LogPII, Metrics: m,
	})
	catalog := templates.New(templates.Config{Store: st, Logger: log, Dir: cfg.TemplatesDir})
	// Every way in creates its messages through this one service.
	messages := message.New(message.Config{
		Store: st, Templates: catalog, DefaultFrom: cfg.From, MaxRecipients: cfg.MaxRecipients,
		MaxMessageSize: cfg.MaxMessageSize, MaxScheduleAhead: cfg.MaxScheduleAhead, MessageTTL: cfg.MessageTTL,
		MaxAttempts: len(cfg.RetryDelays) + 1,
		Broadcast: message.BroadcastConfig{Links: a.links, PostalAddress: cfg.PostalAddress, Mailto: cfg.UnsubscribeMailto,
			FeedbackSender: cfg.FeedbackSender},
		Metrics: m,
	})
	// Contacts, lists and subscriptions. Erasure waits for an ErasureKey (the secret key).
	confirmations := &audience.Confirmations{Store: st, Messages: messages, Links: a.links,
		Template: cfg.ConfirmTemplate, Now: time.Now, Logger: log}
	contacts := audience.New(audience.Config{Store: st, Logger: log, ErasureKey: a.keys.ErasureKey(),
		OnPending: confirmations.Send})
	a.syncer = NewSyncer(st, contacts, nodeOwner(node), log)
	// Campaigns create their messages through the same front door, on the broadcast stream,
	// within a share of the relay's daily quota.
	a.campaigns = campaign.New(campaign.Config{
		Store: st, Messages: messages, Templates: catalog, Owner: nodeOwner(node), Lease: cfg.Lease, Logger: log,
		MessageTTL: cfg.MessageTTL, Window: cfg.CampaignWindow, DailyQuota: relayDailyQuota(cfg),
		QuotaShare: cfg.CampaignQuotaShare, MissedGrace: cfg.CampaignMissedGrace,
		ComplaintRate: cfg.CampaignComplaintRate, ComplaintMinSent: campaign.DefaultComplaintMin, Errors: a.errors,
	})
	// Events and triggers: their messages are composed through the same front door.
	a.notify = notify.New(notify.Config{Store: st, Messages: messages, Templates: catalog, Owner: nodeOwner(node),
		Lease: cfg.Lease, Logger: log, Retention: cfg.EventRetention, Errors: a.errors})
	// Webhooks: every node sends the deliveries it claims, within the address policy.
	allow, _ := cfg.WebhookAllowList() // checked by config.Validate
	a.webhooks = webhook.New(webhook.Config{
		Store: st, Policy: webhook.Policy{Allow: allow, AllowHTTP: cfg.WebhookAllowHTTP},
		RetryDelays: cfg.WebhookRetryDelays, DisableAfter: cfg.WebhookDisableAfter, Timeout: cfg.WebhookTimeout,
		Concurrency: cfg.WebhookConcurrency, Owner: nodeOwner(node), Logger: log,
		UserAgent: "postie-webhooks/" + ReadVersion().Version, Errors: a.errors,
	})
	// Bounce and complaint rates: every node checks them (a pause is recorded once).
	a.reputation = reputation.New(reputation.Config{Store: st, ComplaintWarn: cfg.ComplaintWarn,
		ComplaintPause: cfg.ComplaintPause, BouncePause: cfg.BouncePause, MinVolume: cfg.RateMinVolume, Logger: log})
	a.retention = newRetention(cfg, st, log, a.errors)
	// The bodies of API requests and SMTP messages being received share one memory budget.
	a.inflight = inflight.New(cfg.InflightBytes(), 2*time.Second)
	// The API keys' checks and rate limits are the node's, whichever way a client comes in.
	a.apiKeys = apikey.New(st, nil)
	apiCfg := httpapi.Config{
		Store: st, Logger: log, Version: ReadVersion().Version, PublicURL: cfg.PublicURL, Messages: messages,
		MaxBatch: cfg.MaxBatch, MaxMessageSize: cfg.MaxMessageSize, MessageTTL: cfg.MessageTTL,
		Inflight: a.inflight, WriteTimeout: cfg.WriteTimeout,
		Templates: catalog, Audience: contacts, Campaigns: a.campaigns, Notify: a.notify, Webhooks: a.webhooks,
		Reputation: a.reputation, SES: newSES(cfg, a.processor, log), Errors: a.errors, Keys: a.apiKeys,
		Metrics: a.metrics, ServeMetrics: cfg.AdminAddr() == "",
	}
	// CSV imports: the uploads this node receives are spooled to its disk and run here.
	a.importer, err = imports.New(imports.Config{Store: st, Dir: cfg.ImportSpoolDir(), Node: node,
		Owner: nodeOwner(node), MaxRows: cfg.ImportMaxRows, Lease: cfg.Lease, Logger: log, Errors: a.errors})
	if err != nil {
		return nil, err
	}
	apiCfg.Imports = a.importer
	if cfg.TemplatesDir != "" {
		// A file that does not compile stops the start, naming file:line; later changes are
		// reloaded by Run.
		a.templates = templatedir.New(templatedir.Config{Dir: cfg.TemplatesDir, Catalog: catalog, Logger: log})
		if err := a.templates.Load(ctx); err != nil {
			return nil, fmt.Errorf("POSTIE_TEMPLATES_DIR %s:\n%w", cfg.TemplatesDir, err)
		}
		apiCfg.TemplateLoadErrors = a.templates.Errors
		log.Info("templates loaded", "dir", cfg.TemplatesDir)
	}
	a.api = httpapi.New(apiCfg)
	a.public = web.New(web.Config{Links: a.links, Logger: log,
		Unsubscriber: &audience.Unsubscriber{Store: st, Audience: st}, Subscriber: contacts})

	// Only this process can hold the SQLite file (the driver locks it), so any lease still in
	// the file belonged to a previous run of this node: take them all back at once. On
	// PostgreSQL, where the other nodes hold leases, take back only those of this node id (a
	// previous run killed before it could release them, see nodeOwner); the leases of a dead node
	// that does not come back are rescued when they expire.
	release := store.MessageReleaseParams{OwnerPrefix: node + "/", Now: time.Now()}
	if db, _ := cfg.Database(); db.Driver == "sqlite" {
		release.OwnerPrefix = ""
	}
	n, err := st.MessageReleaseLeases(ctx, release)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Warn("took back messages left in flight by the previous run", "messages", n, "node", node)
	}
	// The same for imports: their spool files are on this node's disk, so it resumes them.
	n, err = st.ImportReleaseLeases(ctx, store.ImportReleaseParams{OwnerPrefix: release.OwnerPrefix, Now: release.Now})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Warn("resuming imports left running by the previous run", "imports", n, "node", node)
	}
	// And campaign runs (RunReleaseLeases takes an owner prefix; "" is every lease). A failure
	// here only delays them: a run whose lease is not taken back is taken over when it ends.
	if n, err := st.RunReleaseLeases(ctx, release.OwnerPrefix); err != nil {
		log.Error("could not take back the campaign runs of the previous run; they resume when their leases end",
			"err", err, "lease", cfg.Lease)
	} else if n > 0 {
		log.Warn("resuming campaign runs left running by the previous run", "runs", n, "node", node)
	}
	// And event actions; as for runs, one not taken back is taken over when its lease ends.
	if n, err := st.ActionReleaseLeases(ctx, release.OwnerPrefix, release.Now); err != nil {
		log.Error("could not take back the event actions of the previous run; they are worked when their leases end",
			"err", err, "lease", cfg.Lease)
	} else if n > 0 {
		log.Warn("resuming event actions left in flight by the previous run", "actions", n, "node", node)
	}
	// And webhook deliveries (due again at once). A failure only delays them until their leases end.
	if n, err := st.WebhookReleaseLeases(ctx, release.OwnerPrefix, release.Now); err != nil {
		log.Error("could not take back the webhook deliveries of the previous run; they are sent when their leases end",
			"err", err)
	} else if n > 0 {
		log.Warn("sending again webhook deliveries left in flight by the previous run", "deliveries", n, "node", node)
	}

	a.listener, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if addr, _ := a.listener.Addr().(*net.TCPAddr); !cfg.BehindProxy && (addr == nil || !addr.IP.IsLoopback()) {
		log.Warn("the API listens beyond this machine without TLS: API keys and messages cross the network in clear. "+
			"Put a TLS-terminating proxy in front and set POSTIE_BEHIND_PROXY=true, or listen on 127.0.0.1",
			"listen", cfg.Listen)
	}
	if err := a.listenAdmin(); err != nil {
		_ = a.listener.Close()
		return nil, err
	}
	defer func() {
		if !ok && a.adminListener != nil {
			_ = a.adminListener.Close()
		}
	}()
	if err := a.listenSubmission(messages); err != nil {
		_ = a.listener.Close()
		return nil, err
	}
	if err := a.listenIntake(); err != nil {
		_ = a.listener.Close()
		if a.submissionListener != nil {
			_ = a.submissionListener.Close()
		}
		return nil, err
	}
	// The key is generated only once the start can no longer fail, so that a generated key is
	// always shown (the caller prints GeneratedKey): a start that fails before leaves none behind.
	if err := a.ensureAPIKey(ctx); err != nil {
		_ = a.listener.Close()
		if a.submissionListener != nil {
			_ = a.submissionListener.Close()
		}
		if a.intakeListener != nil {
			_ = a.intakeListener.Close()
		}
		return nil, err
	}
	ok = true
	return a, nil
}

// nodeID is POSTIE_NODE_ID, or by default hostname:port (the port of POSTIE_LISTEN): stable
// across restarts of one host or pod, and two processes of one network namespace cannot listen on
// one port. Where that gives no stable name (port 0, an unusable hostname), the id is random:
// such a node cannot take back at start what its previous run held, which waits for the lease.
func nodeID(cfg config.Config) string {
	if cfg.NodeID != "" {
		return cfg.NodeID
	}
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(cfg.Listen)
	if id := host + ":" + port; port != "0" && config.CheckNodeID(id) == nil {
		return id
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("node-%x", b)
}

// nodeOwner names this process in the leases it takes: node/pid/random. The node id is what a
// restarted node finds its previous run's leases by (the part up to the first '/'); the random
// part keeps each engine's owner unique where the node id and pid are not (several engines in one
// process, containers all running as pid 1), since on PostgreSQL nodes finish and release leases
// by this name.
func nodeOwner(node string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%x", node, os.Getpid(), b)
}

// CheckConfig checks what config.Validate cannot, because it needs a concrete part that only
// app knows: the relay URL, by the relay's own parser, so that a bad query parameter is reported
// with the other settings' problems. Its errors never echo the URL, which may hold a password.
func CheckConfig(cfg config.Config) error {
	if u, err := url.Parse(cfg.SMTPURL); cfg.SMTPURL == "" || err != nil || u.Scheme != "smtp" && u.Scheme != "smtps" {
		return nil // none, or config.Validate has said what is wrong with it
	}
	if _, err := smtp.ParseURL(cfg.SMTPURL); err != nil {
		return fmt.Errorf("POSTIE_SMTP_URL: %w (want smtp://user:pass@host:587 or smtps://user:pass@host:465)", err)
	}
	return nil
}

// relayDailyQuota is the daily= quota of POSTIE_SMTP_URL, 0 when none (or no relay).
func relayDailyQuota(cfg config.Config) int {
	if cfg.SMTPURL == "" {
		return 0
	}
	rc, err := smtp.ParseURL(cfg.SMTPURL)
	if err != nil {
		return 0 // NewTransport has refused it already
	}
	return rc.Daily
}

// NewTransport builds the relay transport of POSTIE_SMTP_URL, limited to its rate and daily
// quota, or the capture transport when no relay is configured.
func NewTransport(cfg config.Config, log *slog.Logger) (transport.Transport, error) {
	return newTransport(cfg, log, nil)
}

// newTransport is NewTransport, reading the relay pool's connections into m (nil: not read).
func newTransport(cfg config.Config, log *slog.Logger, m *metrics.Metrics) (transport.Transport, error) {
	if cfg.SMTPURL == "" {
		log.Info("no relay configured: messages are captured, nothing leaves this machine")
		return capture.New(), nil
	}
	rc, err := smtp.ParseURL(cfg.SMTPURL)
	if err != nil {
		return nil, fmt.Errorf("POSTIE_SMTP_URL: %w", err)
	}
	t, err := smtp.New(rc)
	if err != nil {
		return nil, fmt.Errorf("POSTIE_SMTP_URL: %w", err)
	}
	if rc.Insecure {
		log.Warn("POSTIE_SMTP_URL has tls=insecure: the relay's certificate is NOT verified, so anyone on the path " +
			"can read and change every message and the relay password; use it for tests only (ca= trusts a private CA)")
	}
	m.Pool(t.PoolStats)
	log.Info("delivering through an SMTP relay", "relay", t.String())
	return transport.Limit(t, transport.Limits{Rate: rc.Rate, Daily: rc.Daily}), nil
}

// Addr is the address the API listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Handler is the HTTP handler (for in-process tests).
func (a *App) Handler() http.Handler { return http.HandlerFunc(a.serve) }

// serve routes the public pages (/u/…, no API key) to package web and the rest to the API.
func (a *App) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/u/") {
		recoverPublic(a.public, a.errors).ServeHTTP(w, r)
		return
	}
	a.api.ServeHTTP(w, r)
}

// Store is the open store (for in-process tests).
func (a *App) Store() store.Store { return a.store }

// ensureAPIKey stores POSTIE_API_KEY (hashed), or generates a key when none exists.
func (a *App) ensureAPIKey(ctx context.Context) error {
	if a.cfg.APIKey == "" {
		n, err := a.store.APIKeyCount(ctx)
		if err != nil || n > 0 {
			return err
		}
		secret, k, err := NewAPIKey("generated on first start", time.Now())
		if err != nil {
			return err
		}
		if err := a.store.APIKeyCreate(ctx, k); err != nil {
			return err
		}
		a.GeneratedKey = secret
		return nil
	}
	return a.store.APIKeyCreate(ctx, apiKeyOf(a.cfg.APIKey, "POSTIE_API_KEY", time.Now()))
}

// NewAPIKey generates an admin key named name (see apikey.Generate).
func NewAPIKey(name string, now time.Time) (secret string, k store.APIKey, err error) {
	return apikey.Generate(name, now)
}

// apiKeyOf is the stored form of secret, an admin key (POSTIE_API_KEY, the key generated at
// first start).
func apiKeyOf(secret, name string, now time.Time) store.APIKey {
	return apikey.FromSecret(secret, name, now)
}

// Run serves the API and delivers until ctx is cancelled, then shuts down: stop claiming and
// stop accepting requests at once, let in-flight requests and sends finish (both within one
// ShutdownTimeout), return unfinished leases, close the store.
func (a *App) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      a.cfg.WriteTimeout, // the message routes and /raw move it (httpapi)
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()

	if a.cfg.DebugListen != "" {
		dbg := &http.Server{Addr: a.cfg.DebugListen, Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := dbg.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("debug listener failed", "err", err)
			}
		}()
		defer dbg.Close()
		a.log.Info("profiling enabled", "addr", "http://"+a.cfg.DebugListen+"/debug/pprof/")
	}

	var stopping atomic.Bool // the admin /readyz answers 503 from the start of the shutdown (the API's too: a.api.Stopping)
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	var wg sync.WaitGroup
	wg.Go(func() { a.serveAdmin(adminCtx, &stopping) })
	wg.Go(func() {
		_ = errtrack.Supervise(engineCtx, a.errors, "queue metrics", func(ctx context.Context) error {
			a.metrics.WatchQueues(ctx, a.store, nil, a.log)
			return nil
		})
	})
	errc := make(chan error, 7)
	// Each worker loop is supervised: a panic is reported and the loop starts again (the
	// services also recover per unit of work: a message, a delivery, an action).
	worker := func(where string, run func(context.Context) error) {
		wg.Go(func() {
			if err := errtrack.Supervise(engineCtx, a.errors, where, run); err != nil {
				errc <- fmt.Errorf("%s: %w", where, err)
			}
		})
	}
	loop := func(run func(context.Context)) func(context.Context) error {
		return func(ctx context.Context) error { run(ctx); return nil }
	}
	if a.templates != nil {
		worker("templates reload", loop(a.templates.Run))
	}
	worker("sync", loop(a.runSync))
	worker("imports", loop(a.importer.Run))
	worker("reputation", loop(a.reputation.Serve))
	worker("campaigns", a.campaigns.Serve)
	worker("event actions", a.notify.Serve)
	worker("webhooks", a.webhooks.Serve)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := a.engine.Run(engineCtx); err != nil {
			errc <- fmt.Errorf("delivery: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		_ = errtrack.Supervise(engineCtx, a.errors, "retention", loop(a.retention.Serve))
	}()
	wg.Go(func() { a.serveSubmission(errc) })
	wg.Go(func() { a.serveIntake(errc) })

	// Every listener was bound by New and is served now: tell systemd (Type=notify) so.
	a.notifyState("READY=1\nSTATUS=serving the API on " + a.Addr())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("shutting down")
	stopping.Store(true)
	a.api.Stopping()
	a.notifyState("STOPPING=1")
	// One deadline for the whole drain: the engine stops claiming now and its in-flight sends
	// get ShutdownTimeout from now, while the listeners drain alongside under the same
	// deadline. Draining one after the other would take up to twice ShutdownTimeout, past the
	// grace period a supervisor gives before SIGKILL (a send killed mid-way is sent again).
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	stopEngine()
	waitSubmission := a.shutdownSubmission(shutCtx)
	waitIntake := a.shutdownIntake(shutCtx)
	if err := srv.Shutdown(shutCtx); err != nil {
		a.log.Warn("HTTP shutdown did not finish cleanly", "err", err)
	}
	waitSubmission()
	waitIntake()
	stopAdmin()
	wg.Wait()
	close(errc)
	for err := range errc {
		runErr = errors.Join(runErr, err)
	}
	_ = a.transport.Close()
	if err := a.store.Close(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	a.flushErrors(ctx)
	return runErr
}

// debugMux serves net/http/pprof, only on the separate POSTIE_DEBUG_LISTEN address.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// loadKeys builds the node's link keys from POSTIE_SECRET_KEY and the database.
func loadKeys(ctx context.Context, cfg config.Config, st store.Store) (*audience.Keys, error) {
	configured, err := cfg.SecretKeys()
	if err != nil {
		return nil, fmt.Errorf("POSTIE_SECRET_KEY: %w", err)
	}
	keys := make([]audience.Key, len(configured))
	for i, k := range configured {
		keys[i] = audience.Key{ID: k.ID, Secret: k.Secret}
	}
	return audience.LoadKeys(ctx, st, keys, time.Now())
}
