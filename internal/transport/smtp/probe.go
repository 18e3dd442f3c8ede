package smtp

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"
)

// ProbeResult says what Probe found out about the relay.
type ProbeResult struct {
	Addr string // host:port of the relay (ProbeURL)
	TLS  string // the TLS version spoken ("TLS 1.3"), "" for tls=none
	Auth bool   // AUTH was done with the configured credentials
}

// Probe opens one connection to the relay the way Send does (connect, TLS or STARTTLS, EHLO,
// AUTH with the configured credentials), then QUITs, sending no mail: a check that the relay
// URL works (postie doctor). A failure is a *transport.Error whose Stage names the step:
// connect, tls, helo or auth.
func (t *Transport) Probe(ctx context.Context) (ProbeResult, error) {
	pc, te := t.dial(ctx)
	if te != nil {
		return ProbeResult{}, te
	}
	pc.unwatch()
	var r ProbeResult
	if pc.tls != nil {
		r.TLS = tls.VersionName(pc.tls.ConnectionState().Version)
	}
	r.Auth = t.cfg.Username != ""
	pc.quit(t.cfg.CommandTimeout)
	return r, nil
}

// ProbeURL probes the relay of a POSTIE_SMTP_URL (see Probe) with one connection and timeout
// for each command. The result's Addr (host:port, the default port filled in) is set whenever
// the URL parses, also on failure; a URL that does not parse is an error of its own, never a
// *transport.Error.
func ProbeURL(ctx context.Context, rawURL string, timeout time.Duration) (ProbeResult, error) {
	rc, err := ParseURL(rawURL)
	if rc.Port == 0 {
		rc.Port = map[string]int{TLSImplicit: 465, TLSNone: 25}[rc.TLS]
		if rc.Port == 0 {
			rc.Port = 587
		}
	}
	addr := fmt.Sprintf("%s:%d", rc.Host, rc.Port)
	if err != nil {
		return ProbeResult{Addr: addr}, err
	}
	rc.CommandTimeout, rc.Pool = timeout, 1
	t, err := New(rc)
	if err != nil {
		return ProbeResult{Addr: addr}, err
	}
	defer t.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := t.Probe(ctx)
	r.Addr = addr
	return r, err
}
