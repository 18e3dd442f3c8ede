package app

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"

	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/inbound"
	"github.com/postie/postie/internal/message"
)

// listenSubmission builds the SMTP submission server of POSTIE_SUBMISSION_LISTEN and listens
// on it (nothing when it is empty). Its messages go through messages, the API's own front door.
func (a *App) listenSubmission(messages *message.Service) error {
	cfg := a.cfg
	if cfg.SubmissionListen == "" {
		return nil
	}
	sc := inbound.SubmissionConfig{Messages: messages, Keys: apikey.New(a.store, nil), Hostname: smtpHostname(cfg.SMTPHostname),
		MaxMessageSize: cfg.MaxMessageSize, MaxRecipients: cfg.MaxRecipients, Inflight: a.inflight, Logger: a.log, Errors: a.errors}
	if cfg.TLSCert != "" {
		tc, err := inbound.LoadTLS(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return err
		}
		sc.TLS = tc
	} else if !inbound.LoopbackOnly(cfg.SubmissionListen) {
		return fmt.Errorf("POSTIE_SUBMISSION_LISTEN %s is reachable beyond this machine: set POSTIE_TLS_CERT and POSTIE_TLS_KEY "+
			"(API keys must not cross the network in clear), or listen on 127.0.0.1", cfg.SubmissionListen)
	}
	l, err := net.Listen("tcp", cfg.SubmissionListen)
	if err != nil {
		return fmt.Errorf("POSTIE_SUBMISSION_LISTEN %s: %w", cfg.SubmissionListen, err)
	}
	a.submission, a.submissionListener = inbound.NewSubmission(sc), l
	a.log.Info("SMTP submission listening", "addr", l.Addr().String(), "starttls", sc.TLS != nil,
		"auth_without_tls", inbound.LoopbackOnly(l.Addr().String()))
	return nil
}

// smtpHostname is POSTIE_SMTP_HOSTNAME, or the machine's host name.
func smtpHostname(configured string) string {
	host, _ := os.Hostname()
	return cmp.Or(configured, host, "localhost")
}

// SubmissionAddr is the address the SMTP submission server listens on ("" when off).
func (a *App) SubmissionAddr() string {
	if a.submissionListener == nil {
		return ""
	}
	return a.submissionListener.Addr().String()
}

// serveSubmission serves SMTP submission until shutdownSubmission; errc gets its failure.
func (a *App) serveSubmission(errc chan<- error) {
	if a.submission != nil {
		serveSMTP("smtp submission", a.submission, a.submissionListener, errc)
	}
}

// shutdownSubmission starts the graceful shutdown of SMTP submission (the transactions begun
// are finished: committed and answered, within ctx) and returns a function waiting for it.
func (a *App) shutdownSubmission(ctx context.Context) (wait func()) {
	if a.submission == nil {
		return func() {}
	}
	return a.shutdownSMTP(ctx, "SMTP submission", a.submission)
}
