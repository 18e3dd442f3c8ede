package smtp

import (
	"context"
	"crypto/tls"
)

// ProbeResult says what Probe found out about the relay.
type ProbeResult struct {
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
