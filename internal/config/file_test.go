package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// writeFile writes a configuration file named postie.toml into a new directory and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "postie.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func flagSet(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestFilePrecedence: defaults < file < environment < flags, each setting on its own, and Sources
// says where each value came from.
func TestFilePrecedence(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `
lease = "90s"
max_batch = 100
max_recipients = 10
retry_delays = ["5s", "1m"]
campaign_quota_share = 1
behind_proxy = true
retain_bodies = "14d"
webhook_allow = ["loopback", "10.0.0.0/8"]
from = "Shop <news@shop.example>"
`)
	fs := flagSet(t, "--config", p, "--max-recipients", "20")
	c, src, err := Resolve(env(map[string]string{"POSTIE_MAX_BATCH": "200", "POSTIE_MAX_RECIPIENTS": "30"}), fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lease != 90*time.Second || c.MaxBatch != 200 || c.MaxRecipients != 20 || c.MaxMessageSize != 25<<20 {
		t.Errorf("lease %v (file), max batch %d (env over file), max recipients %d (flag over env), max size %d (default)",
			c.Lease, c.MaxBatch, c.MaxRecipients, c.MaxMessageSize)
	}
	if len(c.RetryDelays) != 2 || c.RetryDelays[1] != time.Minute || c.CampaignQuotaShare != 1 || !c.BehindProxy ||
		c.RetainBodies != 14*24*time.Hour || c.WebhookAllow != "loopback,10.0.0.0/8" || c.From != "Shop <news@shop.example>" {
		t.Errorf("file values: %v %v %v %v %q %q", c.RetryDelays, c.CampaignQuotaShare, c.BehindProxy, c.RetainBodies, c.WebhookAllow, c.From)
	}
	for env, want := range map[string]string{"POSTIE_LEASE": p, "POSTIE_MAX_BATCH": "POSTIE_MAX_BATCH",
		"POSTIE_MAX_RECIPIENTS": "--max-recipients", "POSTIE_LISTEN": "default"} {
		if got := src.Label(env); got != want {
			t.Errorf("source of %s: %q, want %q", env, got, want)
		}
	}

	// POSTIE_CONFIG names the file when --config is not given.
	c, src, err = Resolve(env(map[string]string{"POSTIE_CONFIG": p}), nil)
	if err != nil || c.Lease != 90*time.Second || src.File != p {
		t.Errorf("POSTIE_CONFIG: lease %v, file %q, %v", c.Lease, src.File, err)
	}
	// An empty string in the file, or an empty flag, clears a string setting.
	p2 := writeFile(t, `from = ""`+"\n"+`admin_listen = ""`)
	c, _, err = Resolve(env(map[string]string{"POSTIE_FROM": ""}), flagSet(t, "--config", p2))
	if err != nil || c.From != "" || c.AdminListen != "" {
		t.Errorf("empty file values: from %q, admin listen %q, %v", c.From, c.AdminListen, err)
	}
}

// TestFileErrors: every problem of the file, the environment and the flags comes at once, each
// named by its source: the file and key, the variable or the flag; a value overridden later is
// not read.
func TestFileErrors(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `
retry_delay = "1m"
lease = 30
max_batch = "many"
listen = "nowhere"
retain_bodies = "1m"
smtp_url = "ftp://u:secret@relay"
message_ttl = "soon"
max_recipients = 1.5

[smtp]
url = "smtp://relay"
`)
	_, _, err := Resolve(env(map[string]string{"POSTIE_MESSAGE_TTL": "2h", "POSTIE_LOG_LEVEL": "loud"}),
		flagSet(t, "--config", p, "--shutdown-timeout", "-1s"))
	if err == nil {
		t.Fatal("a bad file was accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		p + ": retry_delay: unknown setting (did you mean retry_delays?)",
		p + `: lease: want a duration in quotes (like "30s", "10m", "24h", "30d"), got an integer`,
		p + `: max_batch: not an integer: "many"`,
		p + `: listen: want host:port, got "nowhere"`,
		p + ": retain_bodies: must be at least 1h",
		p + ": smtp_url: want smtp://",
		p + ": max_recipients: want an integer, got a float",
		p + ": smtp.url: unknown setting",
		"POSTIE_LOG_LEVEL: want debug, info, warn or error",
		"--shutdown-timeout: must be positive",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "message_ttl") || strings.Contains(msg, "secret") {
		t.Errorf("an overridden value was read, or a password leaked:\n%s", msg)
	}

	for _, tc := range []struct {
		name, text string
		env        map[string]string
		want       string
	}{
		{"syntax", "listen = \"a\"\nmax_batch = = 3\n", nil, ":2:"},
		{"duplicate key", "lease = \"1m\"\nlease = \"2m\"\n", nil, "not TOML"},
		{"missing file", "", map[string]string{"POSTIE_CONFIG": "/nonexistent/postie.toml"}, "POSTIE_CONFIG: open /nonexistent/postie.toml"},
		{"date", "retain_bodies = 2026-01-01\n", nil, "retain_bodies: want a duration in quotes (like \"30s\", \"10m\", \"24h\", \"30d\"), got a date or time"},
		{"array of numbers", "retry_delays = [60, 600]\n", nil, "retry_delays: want strings in the array, got an integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := tc.env
			if e == nil {
				e = map[string]string{"POSTIE_CONFIG": writeFile(t, tc.text)}
			}
			_, _, err := Resolve(env(e), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDurations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"30d", 30 * 24 * time.Hour, "30d"},
		{"1d12h", 36 * time.Hour, "36h"},
		{"1.5d", 36 * time.Hour, "36h"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"10m", 10 * time.Minute, "10m"},
		{"45s", 45 * time.Second, "45s"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"24h", 24 * time.Hour, "1d"},
	} {
		d, err := ParseDuration(tc.in)
		if err != nil || d != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, d, err, tc.want)
		}
		if got := FormatDuration(d); got != tc.out {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, tc.out)
		}
	}
	for _, bad := range []string{"d", "30 days", "soon", "3"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	// Days work in the environment and flags too.
	c, err := Load(env(map[string]string{"POSTIE_RETAIN_INBOUND": "60d", "POSTIE_RETRY_DELAYS": "1h,1d"}), nil)
	if err != nil || c.RetainInbound != 60*24*time.Hour || c.RetryDelays[1] != 24*time.Hour {
		t.Errorf("days in the environment: %v %v %v", c.RetainInbound, c.RetryDelays, err)
	}
}

// TestEffectiveMasksSecrets: config check's listing shows every setting, secrets masked.
func TestEffectiveMasksSecrets(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `
api_key = "k-0123456789abcdef-hunter2"
smtp_url = "smtp://relay-user:hunter2@relay.example:587"
database_url = "postgres://postie:hunter2@db.example:5432/postie?sslmode=require"
sentry_dsn = "https://hunter2@sentry.example/42"
secret_key = "k2:aHVudGVyMmh1bnRlcjJodW50ZXIyaHVudGVyMmh1bnRlcjI=,k1:aHVudGVyMmh1bnRlcjJodW50ZXIyaHVudGVyMmh1bnRlcjI="
`)
	c, src, err := Resolve(env(map[string]string{"POSTIE_CONFIG": p}), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Effective{}
	for _, e := range c.Effective(src) {
		if strings.Contains(e.Value, "hunter2") || strings.Contains(e.Value, "aHVudGVy") {
			t.Errorf("%s shows a secret: %s", e.Key, e.Value)
		}
		got[e.Key] = e
	}
	var all Config
	if len(got) != len(settings(&all)) {
		t.Errorf("%d settings listed, want %d", len(got), len(settings(&all)))
	}
	for key, want := range map[string]string{
		"api_key":      "****",
		"smtp_url":     "smtp://relay-user:****@relay.example:587",
		"database_url": "postgres://postie:****@db.example:5432/postie?sslmode=require",
		"sentry_dsn":   "https://****@sentry.example/42",
		"secret_key":   "k2:****,k1:****",
		"listen":       "127.0.0.1:8080",
	} {
		if got[key].Value != want {
			t.Errorf("%s = %q, want %q", key, got[key].Value, want)
		}
	}
	if got["api_key"].Source != p || got["listen"].Source != "default" {
		t.Errorf("sources: %+v %+v", got["api_key"], got["listen"])
	}
	if got, want := strings.Join(c.FileSecrets(src), ","), "database_url,smtp_url,api_key,secret_key,sentry_dsn"; got != want {
		t.Errorf("FileSecrets = %s, want %s", got, want)
	}
	if m := mask("POSTIE_DATABASE_URL", "postgres://db.example/postie?user=postie&password=hunter2"); strings.Contains(m, "hunter2") {
		t.Errorf("a password parameter shows: %s", m)
	}
	for _, tc := range []struct{ env, v, want string }{
		// A relay token given as the URL's user, with no password.
		{"POSTIE_SMTP_URL", "smtp://tok_7f3a9c@relay.example:587", "smtp://****@relay.example:587"},
		{"POSTIE_SMTP_URL", "smtps://apikey:hunter2@relay.example", "smtps://apikey:****@relay.example"},
		{"POSTIE_DATABASE_URL", "postgres://postie@db.example/postie", "postgres://postie@db.example/postie"},
	} {
		if got := mask(tc.env, tc.v); got != tc.want {
			t.Errorf("mask(%s, %s) = %s, want %s", tc.env, tc.v, got, tc.want)
		}
	}
}

// TestExampleFile: examples/postie.toml loads and validates, and sets what it says.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	c, src, err := Resolve(env(map[string]string{"POSTIE_CONFIG": "../../examples/postie.toml"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RetainBodies != 30*24*time.Hour || c.LogFormat != "json" || src.Origin("POSTIE_RETRY_DELAYS") != FromFile {
		t.Errorf("example: %v %q %v", c.RetainBodies, c.LogFormat, src.Origin("POSTIE_RETRY_DELAYS"))
	}
}
