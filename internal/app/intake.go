package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/inbound"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/store"
)

// undeterminedLimit is how many undetermined bounces of an address, of different messages
// within POSTIE_SOFT_BOUNCE_WINDOW, suppress it (email-rules §4.5: "repeated twice").
const undeterminedLimit = 2

// newProcessor is the one Processor of the reports that come back (the inbound listener, SES
// notifications): reports apply with the soft-bounce policy of cfg, bounce addresses verify
// with v at the bounce domains.
func newProcessor(cfg config.Config, st store.Store, v *mail.VERP, log *slog.Logger, m *metrics.Metrics) *inbound.Processor {
	_, domains, _ := cfg.BounceDomainMap() // checked by config.Validate
	return inbound.NewProcessor(inbound.ProcessorConfig{Store: st, VERP: v, BounceDomains: domains, Logger: log, Metrics: m,
		Policy: store.ReportPolicy{SoftLimit: cfg.SoftBounceLimit, SoftWindow: cfg.SoftBounceWindow,
			SoftSuppressFor: cfg.SoftBounceSuppress, UndeterminedLimit: undeterminedLimit}})
}

// listenIntake builds the bounce and complaint listener of POSTIE_INBOUND_LISTEN and listens on
// it (nothing when it is empty).
func (a *App) listenIntake() error {
	cfg := a.cfg
	if cfg.InboundListen == "" {
		return nil
	}
	_, domains, _ := cfg.BounceDomainMap()
	ic := inbound.IntakeConfig{Hostname: smtpHostname(cfg.SMTPHostname), BounceDomains: domains, MaxSize: cfg.InboundMaxSize,
		Processor: a.processor, Logger: a.log, Inflight: a.inflight, Errors: a.errors}
	if cfg.TLSCert != "" {
		tc, err := inbound.LoadTLS(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return err
		}
		ic.TLS = tc
	}
	l, err := net.Listen("tcp", cfg.InboundListen)
	if err != nil {
		return fmt.Errorf("POSTIE_INBOUND_LISTEN %s: %w", cfg.InboundListen, err)
	}
	a.intake, a.intakeListener = inbound.NewIntake(ic), l
	a.log.Info("bounce and complaint intake listening", "addr", l.Addr().String(), "bounce_domains", domains, "starttls", ic.TLS != nil)
	return nil
}

// IntakeAddr is the address the bounce and complaint listener listens on ("" when off).
func (a *App) IntakeAddr() string {
	if a.intakeListener == nil {
		return ""
	}
	return a.intakeListener.Addr().String()
}

// serveIntake serves the bounce and complaint listener until shutdownIntake; errc gets its
// failure.
func (a *App) serveIntake(errc chan<- error) {
	if a.intake != nil {
		serveSMTP("inbound smtp", a.intake, a.intakeListener, errc)
	}
}

// shutdownIntake starts the graceful shutdown of the bounce and complaint listener (the reports
// being received are recorded and answered, within ctx) and returns a function waiting for it.
func (a *App) shutdownIntake(ctx context.Context) (wait func()) {
	if a.intake == nil {
		return func() {}
	}
	return a.shutdownSMTP(ctx, "inbound SMTP", a.intake)
}

// smtpServer is an SMTP listener of package inbound.
type smtpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// serveSMTP serves s on l until its shutdown; errc gets its failure, named name.
func serveSMTP(name string, s smtpServer, l net.Listener, errc chan<- error) {
	if err := s.Serve(l); err != nil {
		errc <- fmt.Errorf("%s: %w", name, err)
	}
}

// shutdownSMTP starts the graceful shutdown of s within ctx and returns a function waiting for
// it.
func (a *App) shutdownSMTP(ctx context.Context, name string, s smtpServer) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Shutdown(ctx); err != nil {
			a.log.Warn(name+" shutdown did not finish cleanly", "err", err)
		}
	}()
	return func() { <-done }
}
