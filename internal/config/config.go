// Package config holds postie's settings: one Config struct, its defaults, loading from a TOML
// file, environment variables and command-line flags (each wins over the one before), and
// validation. There are no globals: callers pass the environment and flag set in.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postie/postie/internal/mail"
	"github.com/spf13/pflag"
)

// Config is every setting of DESIGN §6 plus the API limits. Each field's tags name its
// environment variable and flag; Load and Flags walk them, so a new setting is one field.
type Config struct {
	Listen          string          `env:"POSTIE_LISTEN" flag:"listen" usage:"address of the HTTP API"`
	DatabaseURL     string          `env:"POSTIE_DATABASE_URL" flag:"database-url" usage:"sqlite:PATH or postgres://…"`
	DBPool          int             `env:"POSTIE_DB_POOL" flag:"db-pool" usage:"PostgreSQL: connections in this node's pool (each node has its own)"`
	DBStmtTimeout   time.Duration   `env:"POSTIE_DB_STATEMENT_TIMEOUT" flag:"db-statement-timeout" usage:"PostgreSQL: abort any statement running longer than this"`
	SMTPURL         string          `env:"POSTIE_SMTP_URL" flag:"smtp-url" usage:"SMTP relay, e.g. smtp://user:pass@host:587 (empty: capture transport, nothing leaves the machine)"`
	APIKey          string          `env:"POSTIE_API_KEY" flag:"api-key" usage:"an admin API key accepted as given (otherwise one is generated on first start)"`
	PublicURL       string          `env:"POSTIE_PUBLIC_URL" flag:"public-url" usage:"base URL for links in messages (default http:// + listen address)"`
	From            string          `env:"POSTIE_FROM" flag:"from" usage:"default sender, e.g. \"Shop <news@shop.example>\""`
	RetryDelays     []time.Duration `env:"POSTIE_RETRY_DELAYS" flag:"retry-delays" usage:"backoff ladder; its length is the number of retries"`
	MessageTTL      time.Duration   `env:"POSTIE_MESSAGE_TTL" flag:"message-ttl" usage:"give up on a message this long after it was due"`
	Lease           time.Duration   `env:"POSTIE_LEASE" flag:"lease" usage:"how long a claimed message stays with one worker"`
	ShutdownTimeout time.Duration   `env:"POSTIE_SHUTDOWN_TIMEOUT" flag:"shutdown-timeout" usage:"how long SIGTERM waits for in-flight sends"`
	TemplatesDir    string          `env:"POSTIE_TEMPLATES_DIR" flag:"templates-dir" usage:"directory of template files, reloaded on change"`
	LogLevel        string          `env:"POSTIE_LOG_LEVEL" flag:"log-level" usage:"debug, info, warn or error"`
	LogFormat       string          `env:"POSTIE_LOG_FORMAT" flag:"log-format" usage:"text or json"`
	DebugListen     string          `env:"POSTIE_DEBUG_LISTEN" flag:"debug-listen" usage:"serve Go profiling (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (empty: off)"`
	NodeID          string          `env:"POSTIE_NODE_ID" flag:"node-id" usage:"this node's name in its leases, stable across restarts and never shared by two live nodes (default hostname:port)"`
	BehindProxy     bool            `env:"POSTIE_BEHIND_PROXY" flag:"behind-proxy" usage:"true when a TLS-terminating proxy is in front (no warning for a listen address that is not loopback)"`

	SecretKey         string `env:"POSTIE_SECRET_KEY" flag:"secret-key" usage:"keys signing unsubscribe and confirmation links: id:base64 (32+ bytes), comma-separated, the first signs (empty: a key generated once and kept in the database)"`
	PostalAddress     string `env:"POSTIE_POSTAL_ADDRESS" flag:"postal-address" usage:"the sender's postal address, shown in the footer of broadcast mail (required before broadcast mail is accepted)"`
	UnsubscribeMailto string `env:"POSTIE_UNSUBSCRIBE_MAILTO" flag:"unsubscribe-mailto" usage:"an address added as a mailto: List-Unsubscribe beside the https one (empty: none)"`
	ConfirmTemplate   string `env:"POSTIE_CONFIRM_TEMPLATE" flag:"confirm-template" usage:"template of the double opt-in confirmation message (empty: the built-in one)"`

	MaxRecipients    int           `env:"POSTIE_MAX_RECIPIENTS" flag:"max-recipients" usage:"recipients (to+cc+bcc) per message"`
	MaxBatch         int           `env:"POSTIE_MAX_BATCH" flag:"max-batch" usage:"messages per batch request"`
	MaxMessageSize   int64         `env:"POSTIE_MAX_MESSAGE_SIZE" flag:"max-message-size" usage:"largest encoded message in bytes"`
	MaxScheduleAhead time.Duration `env:"POSTIE_MAX_SCHEDULE_AHEAD" flag:"max-schedule-ahead" usage:"how far in the future send_at may be"`
	MaxInflightBytes int64         `env:"POSTIE_MAX_INFLIGHT_BYTES" flag:"max-inflight-bytes" usage:"request bytes of message sends handled at once; more wait briefly, then get 503 (0: 2 × max-message-size)"`
	WriteTimeout     time.Duration `env:"POSTIE_WRITE_TIMEOUT" flag:"write-timeout" usage:"a client that has not taken a response (or a /raw body) within this is disconnected"`

	ImportMaxRows int    `env:"POSTIE_IMPORT_MAX_ROWS" flag:"import-max-rows" usage:"most data rows of one CSV import; a larger upload is refused before anything is stored"`
	ImportDir     string `env:"POSTIE_IMPORT_DIR" flag:"import-dir" usage:"where CSV uploads are spooled until imported, on this node's disk (default: imports/ beside a SQLite database, else the system temp directory's postie-imports)"`

	CampaignWindow        int           `env:"POSTIE_CAMPAIGN_WINDOW" flag:"campaign-window" usage:"messages of one campaign run created ahead of delivery at most (created, not yet handed to the relay)"`
	CampaignMissedGrace   time.Duration `env:"POSTIE_CAMPAIGN_MISSED_GRACE" flag:"campaign-missed-grace" usage:"a recurring campaign's occurrence missed while postie was down runs at start when at most this old, else it is skipped"`
	CampaignQuotaShare    float64       `env:"POSTIE_CAMPAIGN_QUOTA_SHARE" flag:"campaign-quota-share" usage:"the share of the relay's daily= quota campaigns may use; the rest is kept for transactional mail"`
	CampaignComplaintRate float64       `env:"POSTIE_CAMPAIGN_COMPLAINT_RATE" flag:"campaign-complaint-rate" usage:"pause a campaign run whose complaints reach this share of its delivered messages, once 1000 were delivered (0: never)"`

	WebhookAllow        string          `env:"POSTIE_WEBHOOK_ALLOW" flag:"webhook-allow" usage:"address ranges webhooks may reach although refused (loopback, private, link-local, …): comma-separated CIDRs or addresses, or the words loopback and private"`
	WebhookAllowHTTP    bool            `env:"POSTIE_WEBHOOK_ALLOW_HTTP" flag:"webhook-allow-http" usage:"true to accept http:// webhook URLs as well as https://"`
	WebhookRetryDelays  []time.Duration `env:"POSTIE_WEBHOOK_RETRY_DELAYS" flag:"webhook-retry-delays" usage:"waits after each failed webhook attempt (±20%); its length is the number of retries"`
	WebhookDisableAfter time.Duration   `env:"POSTIE_WEBHOOK_DISABLE_AFTER" flag:"webhook-disable-after" usage:"disable a webhook endpoint that has been failing for this long"`
	WebhookTimeout      time.Duration   `env:"POSTIE_WEBHOOK_TIMEOUT" flag:"webhook-timeout" usage:"time a webhook receiver has to answer one request"`
	WebhookConcurrency  int             `env:"POSTIE_WEBHOOK_CONCURRENCY" flag:"webhook-concurrency" usage:"webhook requests in flight at once on this node (one endpoint gets a quarter of them at most)"`

	EventRetention time.Duration `env:"POSTIE_EVENT_RETENTION" flag:"event-retention" usage:"how long events (and their ids: the exactly-once window) are kept after they occurred"`

	SubmissionListen string `env:"POSTIE_SUBMISSION_LISTEN" flag:"submission-listen" usage:"SMTP submission listener, e.g. 127.0.0.1:2587: applications send over SMTP with an API key as the password (empty: off)"`
	InboundListen    string `env:"POSTIE_INBOUND_LISTEN" flag:"inbound-listen" usage:"SMTP listener for bounces and complaints sent to the bounce domain, e.g. :25 (empty: off)"`
	TLSCert          string `env:"POSTIE_TLS_CERT" flag:"tls-cert" usage:"PEM certificate (chain) offered by STARTTLS on the SMTP listeners"`
	TLSKey           string `env:"POSTIE_TLS_KEY" flag:"tls-key" usage:"PEM private key of POSTIE_TLS_CERT"`
	SMTPHostname     string `env:"POSTIE_SMTP_HOSTNAME" flag:"smtp-hostname" usage:"the name the SMTP listeners greet with (default: the machine's host name)"`
	BounceDomain     string `env:"POSTIE_BOUNCE_DOMAIN" flag:"bounce-domain" usage:"domain whose MX points at postie's inbound listener: each recipient gets its own signed envelope sender there (VERP), so bounces come back (empty: off)"`
	BounceDomains    string `env:"POSTIE_BOUNCE_DOMAINS" flag:"bounce-domains" usage:"bounce domains per sending domain, so SPF aligns: shop.example=bounce.shop.example,… (others use POSTIE_BOUNCE_DOMAIN)"`
	InboundMaxSize   int64  `env:"POSTIE_INBOUND_MAX_SIZE" flag:"inbound-max-size" usage:"largest bounce or complaint report accepted, in bytes"`

	SoftBounceLimit    int           `env:"POSTIE_SOFT_BOUNCE_LIMIT" flag:"soft-bounce-limit" usage:"soft bounces of one address within POSTIE_SOFT_BOUNCE_WINDOW, with no delivery in between, that suppress it (0: never)"`
	SoftBounceWindow   time.Duration `env:"POSTIE_SOFT_BOUNCE_WINDOW" flag:"soft-bounce-window" usage:"the window soft bounces are counted in"`
	SoftBounceSuppress time.Duration `env:"POSTIE_SOFT_BOUNCE_SUPPRESS" flag:"soft-bounce-suppress" usage:"how long repeated soft bounces suppress an address"`

	ComplaintWarn  float64 `env:"POSTIE_COMPLAINT_WARN" flag:"complaint-warn" usage:"warn when a stream's complaint rate (24h or 7d) reaches this share of its delivered mail"`
	ComplaintPause float64 `env:"POSTIE_COMPLAINT_PAUSE" flag:"complaint-pause" usage:"pause the broadcast stream when its complaint rate reaches this share (0: never)"`
	BouncePause    float64 `env:"POSTIE_BOUNCE_PAUSE" flag:"bounce-pause" usage:"pause the broadcast stream when its bounce rate reaches this share (0: never)"`
	RateMinVolume  int     `env:"POSTIE_RATE_MIN_VOLUME" flag:"rate-min-volume" usage:"delivered recipients a window needs before its rates can pause a stream"`
	FeedbackSender string  `env:"POSTIE_FEEDBACK_SENDER" flag:"feedback-sender" usage:"the sender id closing the Feedback-ID header of broadcast mail (Gmail's feedback loop), 5 to 15 letters or digits"`

	AdminListen string `env:"POSTIE_ADMIN_LISTEN" flag:"admin-listen" usage:"address of the admin listener serving /metrics, /healthz and /readyz without an API key (off or empty: /metrics is served on the API listener, behind an admin API key)"`
	Metrics     bool   `env:"POSTIE_METRICS" flag:"metrics" usage:"collect Prometheus metrics (false: /metrics answers 404 and nothing is counted)"`
	SentryDSN   string `env:"POSTIE_SENTRY_DSN" flag:"sentry-dsn" usage:"report panics and unexpected errors to this Sentry DSN (empty: off)"`
	Environment string `env:"POSTIE_ENVIRONMENT" flag:"environment" usage:"the environment named in error reports, e.g. production or staging"`
	LogPII      bool   `env:"POSTIE_LOG_PII" flag:"log-pii" usage:"true to write recipient addresses in logs (off: addresses in logs and error reports are masked)"`

	RetainBodies            time.Duration `env:"POSTIE_RETAIN_BODIES" flag:"retain-bodies" usage:"delete the body (MIME) of a finished message this long after it finished; its metadata and timeline stay"`
	RetainMessages          time.Duration `env:"POSTIE_RETAIN_MESSAGES" flag:"retain-messages" usage:"delete a finished message's metadata and timeline this long after it finished"`
	RetainWebhookDeliveries time.Duration `env:"POSTIE_RETAIN_WEBHOOK_DELIVERIES" flag:"retain-webhook-deliveries" usage:"delete finished webhook deliveries and their attempts this long after they finished"`
	RetainInbound           time.Duration `env:"POSTIE_RETAIN_INBOUND" flag:"retain-inbound" usage:"delete received bounce and complaint reports (and their dedup keys) this long after they arrived"`
	RetentionInterval       time.Duration `env:"POSTIE_RETENTION_INTERVAL" flag:"retention-interval" usage:"how often the retention purges run (on PostgreSQL one node at a time)"`

	SESTopicARNs string `env:"POSTIE_SES_TOPIC_ARNS" flag:"ses-topic-arns" usage:"SNS topics whose SES notifications POST /v1/inbound/ses accepts, comma-separated ARNs (empty: the endpoint refuses everything)"`
	SNSEndpoint  string `env:"POSTIE_SNS_ENDPOINT" flag:"sns-endpoint" usage:"for tests only: the base URL signing certificates and subscription confirmations must come from, instead of https://sns.<region>.amazonaws.com"`
}

// HardMaxMessageSize is the ceiling for MaxMessageSize (Amazon SES accepts 40 MB).
const HardMaxMessageSize = 40 << 20

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:           "127.0.0.1:8080",
		DatabaseURL:      "sqlite:postie-data/postie.db",
		DBPool:           10,
		DBStmtTimeout:    30 * time.Second,
		RetryDelays:      []time.Duration{time.Minute, 10 * time.Minute, time.Hour},
		MessageTTL:       24 * time.Hour,
		Lease:            60 * time.Second,
		ShutdownTimeout:  30 * time.Second,
		LogLevel:         "info",
		LogFormat:        "text",
		MaxRecipients:    50,
		MaxBatch:         500,
		MaxMessageSize:   25 << 20,
		MaxScheduleAhead: 30 * 24 * time.Hour,
		WriteTimeout:     2 * time.Minute,
		ImportMaxRows:    5_000_000,

		CampaignWindow:        2000,
		CampaignMissedGrace:   time.Hour,
		CampaignQuotaShare:    0.8,
		CampaignComplaintRate: 0.003,

		WebhookRetryDelays: []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
			5 * time.Hour, 10 * time.Hour, 10 * time.Hour},
		WebhookDisableAfter: 72 * time.Hour,
		WebhookTimeout:      10 * time.Second,
		WebhookConcurrency:  128,

		EventRetention: 30 * 24 * time.Hour,

		InboundMaxSize:     10 << 20,
		SoftBounceLimit:    3,
		SoftBounceWindow:   7 * 24 * time.Hour,
		SoftBounceSuppress: 30 * 24 * time.Hour,
		ComplaintWarn:      0.0008,
		ComplaintPause:     0.002,
		BouncePause:        0.05,
		RateMinVolume:      1000,
		FeedbackSender:     "postie",

		AdminListen:             "127.0.0.1:9464",
		Metrics:                 true,
		Environment:             "production",
		RetainBodies:            30 * 24 * time.Hour,
		RetainMessages:          400 * 24 * time.Hour,
		RetainWebhookDeliveries: 30 * 24 * time.Hour,
		RetainInbound:           90 * 24 * time.Hour,
		RetentionInterval:       5 * time.Minute,
	}
}

// setting is one tagged field of a Config.
type setting struct {
	env, flag, usage string
	v                reflect.Value
}

func settings(c *Config) []setting {
	v := reflect.ValueOf(c).Elem()
	out := make([]setting, 0, v.NumField())
	for i := range v.NumField() {
		f := v.Type().Field(i)
		out = append(out, setting{f.Tag.Get("env"), f.Tag.Get("flag"), f.Tag.Get("usage"), v.Field(i)})
	}
	return out
}

var durationsType = reflect.TypeFor[[]time.Duration]()

// String formats the setting's current value as it would be written in the environment.
func (s setting) String() string {
	switch x := s.v.Interface().(type) {
	case time.Duration:
		return FormatDuration(x)
	case []time.Duration:
		parts := make([]string, len(x))
		for i, d := range x {
			parts[i] = FormatDuration(d)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(s.v.Interface())
}

// set parses v into the setting's field.
func (s setting) set(v string) error {
	switch s.v.Interface().(type) {
	case time.Duration:
		d, err := ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (like 30s, 10m, 24h, 30d): %q", v)
		}
		s.v.SetInt(int64(d))
	case []time.Duration:
		var ds []time.Duration
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			d, err := ParseDuration(p)
			if err != nil || d <= 0 {
				return fmt.Errorf("not a positive duration: %q", p)
			}
			ds = append(ds, d)
		}
		s.v.Set(reflect.ValueOf(ds).Convert(durationsType))
	case bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		s.v.SetBool(b)
	case int, int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		s.v.SetInt(n)
	case float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("not a number: %q", v)
		}
		s.v.SetFloat(f)
	default:
		s.v.SetString(v)
	}
	return nil
}

// Flags registers one flag per setting on fs, with the defaults of Default() shown, and
// --config.
func Flags(fs *pflag.FlagSet) {
	fileFlag(fs)
	def := Default()
	for _, s := range settings(&def) {
		s.register(fs)
	}
}

// register adds s's flag to fs, showing its default.
func (s setting) register(fs *pflag.FlagSet) {
	if s.v.Kind() == reflect.Bool {
		// A boolean flag, so that --behind-proxy alone means true.
		fs.Bool(s.flag, s.v.Bool(), s.usage+" ($"+s.env+")")
		return
	}
	fs.String(s.flag, s.String(), s.usage+" ($"+s.env+")")
}

// FlagsOnly registers, as Flags does, the flags of the settings named (by flag name, e.g.
// "database-url"), for a command that reads only those, and --config. It panics on a name no
// setting has.
func FlagsOnly(fs *pflag.FlagSet, names ...string) {
	fileFlag(fs)
	def := Default()
	all := settings(&def)
	for _, name := range names {
		i := slices.IndexFunc(all, func(s setting) bool { return s.flag == name })
		if i < 0 {
			panic("config: no setting has the flag --" + name)
		}
		all[i].register(fs)
	}
}

// Load builds a Config from the defaults, then the configuration file, then the environment
// (getenv), then the flags that were set on fs (fs may be nil); see Resolve. It returns every
// problem at once, joined.
func Load(getenv func(string) string, fs *pflag.FlagSet) (Config, error) {
	c, _, err := Resolve(getenv, fs)
	return c, err
}

// fileFlag registers --config on fs.
func fileFlag(fs *pflag.FlagSet) {
	fs.String(FileFlag, "", "a TOML configuration file; its keys are the variables' names without POSTIE_, lower-cased ($"+FileEnv+")")
}

// Validate checks every setting and returns all problems joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("POSTIE_LISTEN", "want host:port, got %q", c.Listen)
	}
	if c.DebugListen != "" {
		if _, _, err := net.SplitHostPort(c.DebugListen); err != nil {
			bad("POSTIE_DEBUG_LISTEN", "want host:port, got %q", c.DebugListen)
		}
	}
	if _, err := c.Database(); err != nil {
		bad("POSTIE_DATABASE_URL", "%v", err)
	}
	if c.SMTPURL != "" {
		// The shape only; the relay's own parser checks its parameters (app.CheckConfig). Never
		// echo the URL: it may hold a password.
		u, err := url.Parse(c.SMTPURL)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			bad("POSTIE_SMTP_URL", "want smtp://user:pass@host:587 or smtps://user:pass@host:465")
		}
	}
	if c.NodeID != "" {
		if err := CheckNodeID(c.NodeID); err != nil {
			bad("POSTIE_NODE_ID", "%v", err)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("POSTIE_PUBLIC_URL", "want an http(s) URL, got %q", c.PublicURL)
		}
	}
	if c.From != "" {
		if _, err := mail.ParseAddress(c.From); err != nil {
			bad("POSTIE_FROM", "%v", err)
		}
	}
	if _, err := c.SecretKeys(); err != nil {
		bad("POSTIE_SECRET_KEY", "%v", err)
	}
	if c.PostalAddress != "" && (strings.ContainsAny(c.PostalAddress, "\x00\r") || len(c.PostalAddress) > 500) {
		bad("POSTIE_POSTAL_ADDRESS", "at most 500 characters, no NUL or CR (lines are separated by LF)")
	}
	if c.UnsubscribeMailto != "" {
		if a, err := mail.ParseAddress(c.UnsubscribeMailto); err != nil || a.Name != "" {
			bad("POSTIE_UNSUBSCRIBE_MAILTO", "want a bare address like unsubscribe@example.com")
		}
	}
	if c.APIKey != "" && len(c.APIKey) < 16 {
		bad("POSTIE_API_KEY", "must be at least 16 characters")
	}
	if c.DBPool < 1 || c.DBPool > 1000 {
		bad("POSTIE_DB_POOL", "must be between 1 and 1000")
	}
	for env, d := range map[string]time.Duration{"POSTIE_MESSAGE_TTL": c.MessageTTL,
		"POSTIE_LEASE": c.Lease, "POSTIE_SHUTDOWN_TIMEOUT": c.ShutdownTimeout,
		"POSTIE_MAX_SCHEDULE_AHEAD": c.MaxScheduleAhead, "POSTIE_DB_STATEMENT_TIMEOUT": c.DBStmtTimeout} {
		if d <= 0 {
			bad(env, "must be positive")
		}
	}
	if c.Lease > 0 && c.Lease < time.Second {
		bad("POSTIE_LEASE", "must be at least 1s")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("POSTIE_LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("POSTIE_LOG_FORMAT", "want text or json, got %q", c.LogFormat)
	}
	if c.MaxRecipients < 1 {
		bad("POSTIE_MAX_RECIPIENTS", "must be at least 1")
	}
	if c.MaxBatch < 1 {
		bad("POSTIE_MAX_BATCH", "must be at least 1")
	}
	if c.MaxMessageSize < 1024 || c.MaxMessageSize > HardMaxMessageSize {
		bad("POSTIE_MAX_MESSAGE_SIZE", "must be between 1024 and %d bytes", HardMaxMessageSize)
	}
	if c.MaxInflightBytes != 0 && c.MaxInflightBytes < 1<<20 {
		bad("POSTIE_MAX_INFLIGHT_BYTES", "must be 0 (2 × POSTIE_MAX_MESSAGE_SIZE) or at least 1048576 (1 MiB)")
	}
	if c.WriteTimeout < time.Second {
		bad("POSTIE_WRITE_TIMEOUT", "must be at least 1s")
	}
	if c.ImportMaxRows < 1 {
		bad("POSTIE_IMPORT_MAX_ROWS", "must be at least 1")
	}
	if c.CampaignWindow < 1 || c.CampaignWindow > 1_000_000 {
		bad("POSTIE_CAMPAIGN_WINDOW", "must be between 1 and 1000000")
	}
	if c.CampaignMissedGrace < time.Minute {
		bad("POSTIE_CAMPAIGN_MISSED_GRACE", "must be at least 1m (an occurrence is found due within a second or so)")
	}
	if !(c.CampaignQuotaShare > 0 && c.CampaignQuotaShare <= 1) {
		bad("POSTIE_CAMPAIGN_QUOTA_SHARE", "must be more than 0 and at most 1")
	}
	if !(c.CampaignComplaintRate >= 0 && c.CampaignComplaintRate < 1) {
		bad("POSTIE_CAMPAIGN_COMPLAINT_RATE", "must be at least 0 (never pause) and below 1")
	}
	if _, err := c.WebhookAllowList(); err != nil {
		bad("POSTIE_WEBHOOK_ALLOW", "%v", err)
	}
	if len(c.WebhookRetryDelays) > 50 {
		bad("POSTIE_WEBHOOK_RETRY_DELAYS", "at most 50 retries")
	}
	if c.WebhookDisableAfter <= 0 {
		bad("POSTIE_WEBHOOK_DISABLE_AFTER", "must be positive")
	}
	if c.WebhookTimeout < 100*time.Millisecond || c.WebhookTimeout > 5*time.Minute {
		bad("POSTIE_WEBHOOK_TIMEOUT", "must be between 100ms and 5m")
	}
	if c.WebhookConcurrency < 1 || c.WebhookConcurrency > 1024 {
		bad("POSTIE_WEBHOOK_CONCURRENCY", "must be between 1 and 1024")
	}
	if c.EventRetention < time.Hour {
		bad("POSTIE_EVENT_RETENTION", "must be at least 1h (events are the exactly-once window of their ids)")
	}
	for env, addr := range map[string]string{"POSTIE_SUBMISSION_LISTEN": c.SubmissionListen, "POSTIE_INBOUND_LISTEN": c.InboundListen} {
		if addr != "" {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				bad(env, "want host:port, got %q", addr)
			}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("POSTIE_TLS_CERT", "POSTIE_TLS_CERT and POSTIE_TLS_KEY go together")
	}
	if _, _, err := c.BounceDomainMap(); err != nil {
		bad("POSTIE_BOUNCE_DOMAINS", "%v", err)
	}
	if c.BounceDomain != "" && !mail.ValidDomain(c.BounceDomain) {
		bad("POSTIE_BOUNCE_DOMAIN", "not a domain name: %q", c.BounceDomain)
	}
	if c.InboundListen != "" && c.BounceDomain == "" && c.BounceDomains == "" {
		bad("POSTIE_INBOUND_LISTEN", "needs POSTIE_BOUNCE_DOMAIN (or POSTIE_BOUNCE_DOMAINS): it accepts mail only for the bounce domains")
	}
	if c.InboundMaxSize < 64<<10 || c.InboundMaxSize > HardMaxMessageSize {
		bad("POSTIE_INBOUND_MAX_SIZE", "must be between 65536 and %d bytes", HardMaxMessageSize)
	}
	if c.SoftBounceLimit < 0 {
		bad("POSTIE_SOFT_BOUNCE_LIMIT", "must be at least 0 (never)")
	}
	if c.SoftBounceWindow <= 0 {
		bad("POSTIE_SOFT_BOUNCE_WINDOW", "must be positive")
	}
	if c.SoftBounceSuppress <= 0 {
		bad("POSTIE_SOFT_BOUNCE_SUPPRESS", "must be positive")
	}
	for env, f := range map[string]float64{"POSTIE_COMPLAINT_WARN": c.ComplaintWarn,
		"POSTIE_COMPLAINT_PAUSE": c.ComplaintPause, "POSTIE_BOUNCE_PAUSE": c.BouncePause} {
		if !(f >= 0 && f < 1) {
			bad(env, "must be at least 0 and below 1")
		}
	}
	if c.RateMinVolume < 1 {
		bad("POSTIE_RATE_MIN_VOLUME", "must be at least 1")
	}
	if n := len(c.FeedbackSender); n < 5 || n > 15 || strings.Trim(c.FeedbackSender, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		bad("POSTIE_FEEDBACK_SENDER", "want 5 to 15 letters or digits, got %q", c.FeedbackSender)
	}
	if c.AdminAddr() != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			bad("POSTIE_ADMIN_LISTEN", "want host:port or off, got %q", c.AdminListen)
		}
	}
	if c.SentryDSN != "" {
		if u, err := url.Parse(c.SentryDSN); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User == nil || strings.Trim(u.Path, "/") == "" {
			// Never echo the DSN: its user part is the project's key.
			bad("POSTIE_SENTRY_DSN", "want https://KEY@HOST/PROJECT-ID")
		}
	}
	if c.Environment == "" || len(c.Environment) > 64 || strings.ContainsAny(c.Environment, "\x00\r\n/") {
		bad("POSTIE_ENVIRONMENT", "want 1 to 64 characters, no slash or line break")
	}
	if c.RetainBodies < time.Hour {
		bad("POSTIE_RETAIN_BODIES", "must be at least 1h")
	}
	if c.RetainMessages < c.RetainBodies {
		bad("POSTIE_RETAIN_MESSAGES", "must be at least POSTIE_RETAIN_BODIES (%s): a message's body goes before its metadata", c.RetainBodies)
	}
	for env, d := range map[string]time.Duration{"POSTIE_RETAIN_WEBHOOK_DELIVERIES": c.RetainWebhookDeliveries,
		"POSTIE_RETAIN_INBOUND": c.RetainInbound} {
		if d < time.Hour {
			bad(env, "must be at least 1h")
		}
	}
	if c.RetentionInterval < time.Second {
		bad("POSTIE_RETENTION_INTERVAL", "must be at least 1s")
	}
	for _, arn := range c.TopicARNs() {
		if !strings.HasPrefix(arn, "arn:aws:sns:") || strings.Count(arn, ":") != 5 {
			bad("POSTIE_SES_TOPIC_ARNS", "not an SNS topic ARN (arn:aws:sns:region:account:name): %q", arn)
		}
	}
	if c.SNSEndpoint != "" {
		if u, err := url.Parse(c.SNSEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("POSTIE_SNS_ENDPOINT", "want an http(s) URL, got %q", c.SNSEndpoint)
		}
	}
	return errors.Join(errs...)
}

// maxNodeID is the longest node id: a Kubernetes pod name (a DNS subdomain) and a port fit.
const maxNodeID = 253 + 6

// CheckNodeID says whether id can name a node: letters, digits, '.', '-', '_' and ':', starting
// with a letter or digit. Not '/': it separates the node id from the per-process part of a lease
// owner, and a node takes back at start the leases whose owner begins with its id and '/'.
func CheckNodeID(id string) error {
	if id == "" || len(id) > maxNodeID {
		return fmt.Errorf("must be 1 to %d characters long", maxNodeID)
	}
	for i, r := range id {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
			i > 0 && (r == '.' || r == '-' || r == '_' || r == ':')
		if !ok {
			return fmt.Errorf("want letters, digits, '.', '-', '_' or ':', starting with a letter or digit; got %.64q", id)
		}
	}
	return nil
}

// BounceDomainMap parses BounceDomains ("shop.example=bounce.shop.example,…") into sending
// domain → bounce domain, lowercased, and returns every bounce domain (BounceDomain first, when
// set): the domains the inbound listener accepts mail for.
func (c *Config) BounceDomainMap() (per map[string]string, all []string, err error) {
	if c.BounceDomain != "" {
		all = append(all, strings.ToLower(c.BounceDomain))
	}
	for _, item := range strings.Split(c.BounceDomains, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		from, bounce, ok := strings.Cut(item, "=")
		from, bounce = strings.ToLower(strings.TrimSpace(from)), strings.ToLower(strings.TrimSpace(bounce))
		if !ok || !mail.ValidDomain(from) || !mail.ValidDomain(bounce) {
			return nil, nil, fmt.Errorf("want sending-domain=bounce-domain items separated by commas, got %q", item)
		}
		if per == nil {
			per = map[string]string{}
		}
		per[from] = bounce
		if !slices.Contains(all, bounce) {
			all = append(all, bounce)
		}
	}
	return per, all, nil
}

// TopicARNs is SESTopicARNs as a list.
func (c *Config) TopicARNs() []string {
	var out []string
	for _, a := range strings.Split(c.SESTopicARNs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// InflightBytes is MaxInflightBytes, or its default when 0: two of the largest messages.
func (c *Config) InflightBytes() int64 {
	if c.MaxInflightBytes > 0 {
		return c.MaxInflightBytes
	}
	return 2 * c.MaxMessageSize
}

// Database describes the database selected by DatabaseURL.
type Database struct {
	Driver string // "sqlite" or "postgres"
	Path   string // SQLite file path
	URL    string // PostgreSQL connection URL
}

// Database parses DatabaseURL.
func (c *Config) Database() (Database, error) {
	switch {
	case strings.HasPrefix(c.DatabaseURL, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(c.DatabaseURL, "sqlite:"), "//")
		if p == "" {
			return Database{}, errors.New("sqlite: needs a file path, e.g. sqlite:postie-data/postie.db")
		}
		return Database{Driver: "sqlite", Path: p}, nil
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		return Database{Driver: "postgres", URL: c.DatabaseURL}, nil
	}
	return Database{}, errors.New("want sqlite:PATH or postgres://…")
}

// ImportSpoolDir is ImportDir, or its default: imports/ beside a SQLite database (which lives
// on this node's disk too), otherwise postie-imports in the system temp directory.
func (c *Config) ImportSpoolDir() string {
	if c.ImportDir != "" {
		return c.ImportDir
	}
	if db, err := c.Database(); err == nil && db.Driver == "sqlite" {
		return filepath.Join(filepath.Dir(db.Path), "imports")
	}
	return filepath.Join(os.TempDir(), "postie-imports")
}

// BaseURL is PublicURL, or http:// + the listen address.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://" + c.Listen
}

// SecretKey is one key of POSTIE_SECRET_KEY.
type SecretKey struct {
	ID     string // carried by every token it signs; letters, digits, '-' and '_', at most 16
	Secret []byte // at least 32 bytes
}

// AutoKeyID is the id of the key postie generates and keeps in the database; POSTIE_SECRET_KEY
// may not use it.
const AutoKeyID = "auto"

// SecretKeys parses SecretKey: "id:base64" items separated by commas, the first one signing and
// every one verifying (a rotation puts the new key first and keeps the old ones after it). The
// base64 may be standard or URL-safe, padded or not. Errors never echo a secret.
func (c *Config) SecretKeys() ([]SecretKey, error) {
	if strings.TrimSpace(c.SecretKey) == "" {
		return nil, nil
	}
	var keys []SecretKey
	seen := map[string]bool{}
	for i, item := range strings.Split(c.SecretKey, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			return nil, fmt.Errorf("key %d: want id:base64 (e.g. k1:$(openssl rand -base64 32))", i+1)
		}
		if id == "" || len(id) > 16 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return nil, fmt.Errorf("key %d: the id must be 1 to 16 letters, digits, '-' or '_'", i+1)
		}
		if id == AutoKeyID {
			return nil, fmt.Errorf("key %d: the id %q is reserved for the key kept in the database", i+1, AutoKeyID)
		}
		if seen[id] {
			return nil, fmt.Errorf("key %d: the id %q is used twice", i+1, id)
		}
		seen[id] = true
		b64 = strings.TrimRight(b64, "=")
		secret, err := base64.RawStdEncoding.DecodeString(b64)
		if err != nil {
			secret, err = base64.RawURLEncoding.DecodeString(b64)
		}
		if err != nil {
			return nil, fmt.Errorf("key %s: not base64", id)
		}
		if len(secret) < 32 {
			return nil, fmt.Errorf("key %s: %d bytes, want at least 32", id, len(secret))
		}
		keys = append(keys, SecretKey{ID: id, Secret: secret})
	}
	return keys, nil
}

// The ranges the words of POSTIE_WEBHOOK_ALLOW stand for.
var webhookAllowWords = map[string][]string{
	"loopback": {"127.0.0.0/8", "::1/128"},
	"private":  {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"},
}

// WebhookAllowList parses WebhookAllow: comma-separated CIDRs (10.1.0.0/16), addresses
// (192.168.1.5, a /32 or /128) and the words loopback (127.0.0.0/8, ::1) and private (RFC 1918
// and fc00::/7), into the ranges webhooks may reach although the address policy refuses them.
func (c *Config) WebhookAllowList() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(c.WebhookAllow, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if ps, ok := webhookAllowWords[strings.ToLower(item)]; ok {
			for _, p := range ps {
				out = append(out, netip.MustParsePrefix(p))
			}
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("%q: not a CIDR like 10.0.0.0/8 or fd00::/8", item)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q: want a CIDR (10.0.0.0/8), an address, loopback or private", item)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// AdminAddr is the address of the admin listener, "" when there is none: POSTIE_ADMIN_LISTEN
// empty or "off" (any case; an empty environment variable counts as unset, so off is how the
// environment turns it off).
func (c Config) AdminAddr() string {
	if strings.EqualFold(c.AdminListen, "off") {
		return ""
	}
	return c.AdminListen
}
