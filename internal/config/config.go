// Package config holds postie's settings: one Config struct, its defaults, loading from
// environment variables and command-line flags (flags win), and validation. There are no globals:
// callers pass the environment and flag set in.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postie/postie/internal/mail"
	"github.com/spf13/pflag"
)

// Config is every setting of DESIGN §6 plus the API limits.
type Config struct {
	Listen          string          // POSTIE_LISTEN
	DatabaseURL     string          // POSTIE_DATABASE_URL: sqlite:PATH or postgres://…
	SMTPURL         string          // POSTIE_SMTP_URL: empty → capture transport
	APIKey          string          // POSTIE_API_KEY
	PublicURL       string          // POSTIE_PUBLIC_URL
	From            string          // POSTIE_FROM: default sender
	RetryDelays     []time.Duration // POSTIE_RETRY_DELAYS
	MessageTTL      time.Duration   // POSTIE_MESSAGE_TTL
	Lease           time.Duration   // POSTIE_LEASE
	ShutdownTimeout time.Duration   // POSTIE_SHUTDOWN_TIMEOUT
	TemplatesDir    string          // POSTIE_TEMPLATES_DIR
	LogLevel        string          // POSTIE_LOG_LEVEL: debug, info, warn, error
	LogFormat       string          // POSTIE_LOG_FORMAT: text or json
	DebugListen     string          // POSTIE_DEBUG_LISTEN: net/http/pprof on this address (empty: off)

	MaxRecipients    int           // POSTIE_MAX_RECIPIENTS: to+cc+bcc per message
	MaxBatch         int           // POSTIE_MAX_BATCH: messages per batch request
	MaxMessageSize   int64         // POSTIE_MAX_MESSAGE_SIZE: encoded octets
	MaxScheduleAhead time.Duration // POSTIE_MAX_SCHEDULE_AHEAD: how far send_at may be
}

// HardMaxMessageSize is the ceiling for MaxMessageSize (Amazon SES accepts 40 MB).
const HardMaxMessageSize = 40 << 20

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:           "127.0.0.1:8080",
		DatabaseURL:      "sqlite:postie-data/postie.db",
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
	}
}

// setting binds one Config field to its environment variable and flag.
type setting struct {
	flag, env, usage string
	get              func(c *Config) string
	set              func(c *Config, v string) error
}

func str(p func(c *Config) *string) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return *p(c) },
		func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(c *Config) *time.Duration) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return p(c).String() },
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration (like 30s, 10m, 24h): %q", v)
			}
			*p(c) = d
			return nil
		}
}

func integer(p func(c *Config) *int) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return strconv.Itoa(*p(c)) },
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not an integer: %q", v)
			}
			*p(c) = n
			return nil
		}
}

func settings() []setting {
	s := func(flag, env, usage string, get func(*Config) string, set func(*Config, string) error) setting {
		return setting{flag, env, usage, get, set}
	}
	var out []setting
	add := func(x setting) { out = append(out, x) }
	g, st := str(func(c *Config) *string { return &c.Listen })
	add(s("listen", "POSTIE_LISTEN", "address of the HTTP API", g, st))
	g, st = str(func(c *Config) *string { return &c.DatabaseURL })
	add(s("database-url", "POSTIE_DATABASE_URL", "sqlite:PATH or postgres://…", g, st))
	g, st = str(func(c *Config) *string { return &c.SMTPURL })
	add(s("smtp-url", "POSTIE_SMTP_URL", "SMTP relay, e.g. smtp://user:pass@host:587 (empty: capture transport, nothing leaves the machine)", g, st))
	g, st = str(func(c *Config) *string { return &c.APIKey })
	add(s("api-key", "POSTIE_API_KEY", "an admin API key accepted as given (otherwise one is generated on first start)", g, st))
	g, st = str(func(c *Config) *string { return &c.PublicURL })
	add(s("public-url", "POSTIE_PUBLIC_URL", "base URL for links in messages (default http:// + listen address)", g, st))
	g, st = str(func(c *Config) *string { return &c.From })
	add(s("from", "POSTIE_FROM", "default sender, e.g. \"Shop <news@shop.example>\"", g, st))
	add(s("retry-delays", "POSTIE_RETRY_DELAYS", "backoff ladder; its length is the number of retries",
		func(c *Config) string {
			parts := make([]string, len(c.RetryDelays))
			for i, d := range c.RetryDelays {
				parts[i] = d.String()
			}
			return strings.Join(parts, ",")
		},
		func(c *Config, v string) error {
			var ds []time.Duration
			for _, p := range strings.Split(v, ",") {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				d, err := time.ParseDuration(p)
				if err != nil || d <= 0 {
					return fmt.Errorf("not a positive duration: %q", p)
				}
				ds = append(ds, d)
			}
			c.RetryDelays = ds
			return nil
		}))
	g, st = dur(func(c *Config) *time.Duration { return &c.MessageTTL })
	add(s("message-ttl", "POSTIE_MESSAGE_TTL", "give up on a message this long after acceptance", g, st))
	g, st = dur(func(c *Config) *time.Duration { return &c.Lease })
	add(s("lease", "POSTIE_LEASE", "how long a claimed message stays with one worker", g, st))
	g, st = dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })
	add(s("shutdown-timeout", "POSTIE_SHUTDOWN_TIMEOUT", "how long SIGTERM waits for in-flight sends", g, st))
	g, st = str(func(c *Config) *string { return &c.TemplatesDir })
	add(s("templates-dir", "POSTIE_TEMPLATES_DIR", "directory of template files, reloaded on change", g, st))
	g, st = str(func(c *Config) *string { return &c.LogLevel })
	add(s("log-level", "POSTIE_LOG_LEVEL", "debug, info, warn or error", g, st))
	g, st = str(func(c *Config) *string { return &c.LogFormat })
	add(s("log-format", "POSTIE_LOG_FORMAT", "text or json", g, st))
	g, st = str(func(c *Config) *string { return &c.DebugListen })
	add(s("debug-listen", "POSTIE_DEBUG_LISTEN", "serve Go profiling (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (empty: off)", g, st))
	g, st = integer(func(c *Config) *int { return &c.MaxRecipients })
	add(s("max-recipients", "POSTIE_MAX_RECIPIENTS", "recipients (to+cc+bcc) per message", g, st))
	g, st = integer(func(c *Config) *int { return &c.MaxBatch })
	add(s("max-batch", "POSTIE_MAX_BATCH", "messages per batch request", g, st))
	add(s("max-message-size", "POSTIE_MAX_MESSAGE_SIZE", "largest encoded message in bytes",
		func(c *Config) string { return strconv.FormatInt(c.MaxMessageSize, 10) },
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("not an integer: %q", v)
			}
			c.MaxMessageSize = n
			return nil
		}))
	g, st = dur(func(c *Config) *time.Duration { return &c.MaxScheduleAhead })
	add(s("max-schedule-ahead", "POSTIE_MAX_SCHEDULE_AHEAD", "how far in the future send_at may be", g, st))
	return out
}

// Flags registers one flag per setting on fs, with the defaults of Default() shown.
func Flags(fs *pflag.FlagSet) {
	def := Default()
	for _, s := range settings() {
		fs.String(s.flag, s.get(&def), s.usage+" ($"+s.env+")")
	}
}

// Load builds a Config from the defaults, then the environment (getenv), then the flags that
// were set on fs (fs may be nil). It returns every problem at once, joined.
func Load(getenv func(string) string, fs *pflag.FlagSet) (Config, error) {
	c := Default()
	var errs []error
	for _, s := range settings() {
		v, from := getenv(s.env), s.env
		if fs != nil {
			if f := fs.Lookup(s.flag); f != nil && f.Changed {
				v, from = f.Value.String(), "--"+s.flag
			}
		}
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", from, err))
		}
	}
	// Validate too, so every problem is reported at once (fields that failed to parse keep
	// their defaults and pass).
	return c, errors.Join(append(errs, c.Validate())...)
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
		u, err := url.Parse(c.SMTPURL)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			// Never echo the URL: it may hold a password.
			bad("POSTIE_SMTP_URL", "want smtp://user:pass@host:587 or smtps://user:pass@host:465")
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
	if c.APIKey != "" && len(c.APIKey) < 16 {
		bad("POSTIE_API_KEY", "must be at least 16 characters")
	}
	for env, d := range map[string]time.Duration{"POSTIE_MESSAGE_TTL": c.MessageTTL,
		"POSTIE_LEASE": c.Lease, "POSTIE_SHUTDOWN_TIMEOUT": c.ShutdownTimeout,
		"POSTIE_MAX_SCHEDULE_AHEAD": c.MaxScheduleAhead} {
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
	return errors.Join(errs...)
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

// BaseURL is PublicURL, or http:// + the listen address.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://" + c.Listen
}
