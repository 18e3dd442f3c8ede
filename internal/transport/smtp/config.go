package smtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"
)

// TLS modes for Config.TLS.
const (
	// TLSStartTLS upgrades a plain connection with STARTTLS; a relay that does not offer it is
	// Unreachable (no plaintext fallback).
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (smtps, usually port 465).
	TLSImplicit = "implicit"
	// TLSNone sends in plaintext: for a trusted relay on the same host or network only.
	TLSNone = "none"
)

// Config configures a relay transport. Zero fields take the defaults documented on each.
type Config struct {
	Host string
	Port int // default 587 for starttls, 465 for implicit, 25 for none

	TLS string // TLSStartTLS (default), TLSImplicit or TLSNone

	// Username and Password enable AUTH (PLAIN when offered, else LOGIN). With TLS they are only
	// ever sent over the encrypted connection; with TLSNone they go in plaintext.
	Username, Password string

	Helo string // EHLO name; default os.Hostname()

	Pool        int           // connections kept open and reused; default 4
	MaxPerConn  int           // messages per connection before QUIT and reconnect; default 100
	IdleTimeout time.Duration // idle connections older than this are closed; default 30s

	// Lockstep sends one command at a time and waits for each reply even when the relay offers
	// PIPELINING (RFC 2920), for a relay whose pipelining is broken (?pipelining=off).
	Lockstep bool

	CommandTimeout time.Duration // per command; default 30s
	DataTimeout    time.Duration // message body and the reply to the final "."; default 2m

	// Rate (messages per second) and Daily (messages per day) are parsed from the relay URL for a
	// limiter in front of the transport; the transport itself does not enforce them.
	Rate  float64
	Daily int

	TLSConfig *tls.Config // nil: system roots, ServerName = Host, TLS 1.2 or later

	// CAFile names a PEM file whose certificates are trusted for the relay's certificate instead
	// of the system roots (?ca=): a private CA, or the relay's own self-signed certificate.
	// New reads it and fails when it cannot be read or holds no certificate.
	CAFile string
	// Insecure accepts any certificate from the relay (?tls=insecure), for tests only: anyone on
	// the path can then read and change every message and the AUTH credentials. Whoever builds
	// the transport logs a warning at every start.
	Insecure bool

	// Dial opens the TCP connection; default a net.Dialer. Tests point it at in-process servers.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	Now  func() time.Time // idle-connection accounting; default time.Now (deadlines use the wall clock)
}

// String describes the relay without the password, so a Config is safe to log with %v or %+v.
func (c Config) String() string {
	user := ""
	if c.Username != "" {
		user = c.Username + ":xxxxx@"
	}
	trust := ""
	switch {
	case c.Insecure:
		trust = " (insecure: certificate not verified)"
	case c.CAFile != "":
		trust = " ca=" + c.CAFile
	}
	return fmt.Sprintf("smtp relay %s%s tls=%s%s pool=%d max_per_conn=%d", user,
		net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.TLS, trust, c.Pool, c.MaxPerConn)
}

// GoString is String, so %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Host == "" {
		return c, errors.New("transport/smtp: no relay host")
	}
	switch c.TLS {
	case "":
		c.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return c, fmt.Errorf("transport/smtp: tls must be %s, %s or %s", TLSStartTLS, TLSImplicit, TLSNone)
	}
	if c.Port == 0 {
		c.Port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[c.TLS]
	}
	if c.Port < 1 || c.Port > 65535 {
		return c, errors.New("transport/smtp: port must be 1-65535")
	}
	if c.Password != "" && c.Username == "" {
		return c, errors.New("transport/smtp: password without a username")
	}
	if err := c.trust(); err != nil {
		return c, err
	}
	if c.Pool < 0 || c.MaxPerConn < 0 || c.IdleTimeout < 0 || c.CommandTimeout < 0 || c.DataTimeout < 0 ||
		c.Rate < 0 || c.Daily < 0 {
		return c, errors.New("transport/smtp: negative pool size, limit or timeout")
	}
	if c.Helo == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.Helo = h
	}
	if c.Pool == 0 {
		c.Pool = 4
	}
	if c.MaxPerConn == 0 {
		c.MaxPerConn = 100
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 30 * time.Second
	}
	if c.DataTimeout == 0 {
		c.DataTimeout = 2 * time.Minute
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// trust applies CAFile or Insecure to c.TLSConfig (a copy of it).
func (c *Config) trust() error {
	if c.CAFile == "" && !c.Insecure {
		return nil
	}
	switch {
	case c.TLS == TLSNone:
		return errors.New("transport/smtp: ca and tls=insecure need TLS, not tls=none")
	case c.CAFile != "" && c.Insecure:
		return errors.New("transport/smtp: ca and tls=insecure exclude each other")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
	}
	if c.Insecure {
		tc.InsecureSkipVerify = true
	} else {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			// The path is left out as ParseURL leaves out values: the operator has it.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("transport/smtp: ca: cannot read the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("transport/smtp: ca: the CA file holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	c.TLSConfig = tc
	return nil
}

// ParseURL reads a relay URL:
//
//	smtp://user:pass@host:587?tls=starttls&pool=8&max_per_conn=100&helo=mail.example.com
//	smtps://user:pass@host:465         (implicit TLS)
//
// smtp:// defaults to STARTTLS on port 587 (tls=none for a plaintext local relay, default port 25);
// smtps:// is implicit TLS on 465. ca=/path/to/ca.pem trusts the certificates in that PEM file
// (a private CA or a self-signed certificate) instead of the system roots; tls=insecure keeps the
// scheme's TLS and verifies no certificate (tests only). Other parameters: rate
// (messages/second), daily (messages/day), idle_timeout, command_timeout, data_timeout (Go
// durations). User and password must be
// percent-encoded. Unset fields keep their zero value; New applies the defaults.
//
// Errors name the part that is wrong but never quote the URL or any part of it other than
// the names of known parameters: a misplaced character can make the parser see a piece of the password as a
// host, port, path or query.
func ParseURL(raw string) (Config, error) {
	fail := func(what string) (Config, error) {
		return Config{}, errors.New("transport/smtp: relay URL: " + what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		return fail("does not parse (percent-encode special characters in the user and password)")
	}
	var cfg Config
	switch u.Scheme {
	case "smtp":
		cfg.TLS = TLSStartTLS
	case "smtps":
		cfg.TLS = TLSImplicit
	default:
		return fail("scheme must be smtp or smtps")
	}
	if u.Opaque != "" || u.Host == "" {
		return fail("want smtp://[user:password@]host[:port]")
	}
	if u.Path != "" && u.Path != "/" || u.Fragment != "" {
		return fail("unexpected path or fragment (percent-encode special characters in the password)")
	}
	cfg.Host = u.Hostname()
	if cfg.Host == "" {
		return fail("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fail("port must be 1-65535")
		}
		cfg.Port = n
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		if cfg.Username == "" {
			return fail("password without a user name")
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail("query does not parse")
	}
	for key, vals := range q {
		v := vals[len(vals)-1]
		var bad bool
		switch key {
		case "tls":
			switch {
			case v == TLSImplicit, v == TLSStartTLS && u.Scheme == "smtp", v == TLSNone && u.Scheme == "smtp":
				cfg.TLS = v
			case v == "insecure":
				cfg.Insecure = true
			default:
				bad = true
			}
		case "ca":
			cfg.CAFile = v
			bad = v == ""
		case "helo":
			cfg.Helo = v
			bad = v == ""
		case "pool":
			cfg.Pool, bad = positiveInt(v)
		case "max_per_conn":
			cfg.MaxPerConn, bad = positiveInt(v)
		case "daily":
			cfg.Daily, bad = positiveInt(v)
		case "rate":
			cfg.Rate, err = strconv.ParseFloat(v, 64)
			bad = err != nil || cfg.Rate <= 0
		case "pipelining":
			switch v {
			case "on":
				cfg.Lockstep = false
			case "off":
				cfg.Lockstep = true
			default:
				bad = true
			}
		case "idle_timeout":
			cfg.IdleTimeout, bad = positiveDuration(v)
		case "command_timeout":
			cfg.CommandTimeout, bad = positiveDuration(v)
		case "data_timeout":
			cfg.DataTimeout, bad = positiveDuration(v)
		default:
			return fail("unknown parameter (known: tls, ca, helo, pool, max_per_conn, rate, daily, pipelining, idle_timeout, command_timeout, data_timeout)")
		}
		if bad {
			return fail(fmt.Sprintf("bad value for %s", key))
		}
	}
	if cfg.Port == 0 && cfg.TLS == TLSNone {
		cfg.Port = 25
	}
	if cfg.Port == 0 && cfg.TLS == TLSImplicit {
		cfg.Port = 465
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	return cfg, nil
}

func positiveInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err != nil || n < 1
}

func positiveDuration(s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	return d, err != nil || d <= 0
}
