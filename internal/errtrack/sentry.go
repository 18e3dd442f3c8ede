package errtrack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/getsentry/sentry-go"
)

// SentryConfig configures a Sentry reporter.
type SentryConfig struct {
	DSN         string // POSTIE_SENTRY_DSN
	Release     string // postie's version
	Environment string // POSTIE_ENVIRONMENT
	ServerName  string // the node id
	// Logger receives every report too (at level error); nil logs nothing.
	Logger *slog.Logger
	// HTTPClient sends the reports; nil is a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Sentry is a Reporter that logs each report and sends it to Sentry, scrubbed (see
// NewSentry). It is safe for concurrent use; Flush before the process exits.
type Sentry struct {
	client *sentry.Client
	log    Reporter
}

// NewSentry returns the reporter of cfg. What it sends is scrubbed before it leaves: no request,
// no user or IP address, no headers, and every text (message, exception, breadcrumbs, tags,
// contexts) passed through Scrub. It sends in the background; a report that cannot be
// sent is dropped (and logged by the Logger anyway).
func NewSentry(cfg SentryConfig) (*Sentry, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn: cfg.DSN, Release: cfg.Release, Environment: cfg.Environment, ServerName: cfg.ServerName,
		HTTPClient: cfg.HTTPClient, DisableClientReports: true,
		BeforeSend: func(e *sentry.Event, _ *sentry.EventHint) *sentry.Event { return scrubEvent(e) },
		BeforeBreadcrumb: func(b *sentry.Breadcrumb, _ *sentry.BreadcrumbHint) *sentry.Breadcrumb {
			scrubBreadcrumb(b)
			return b
		},
		// Only the runtime and OS context: no source lines read from disk, no module list.
		Integrations: func(in []sentry.Integration) []sentry.Integration {
			var out []sentry.Integration
			for _, i := range in {
				if i.Name() == "Environment" {
					out = append(out, i)
				}
			}
			return out
		},
	})
	if err != nil {
		// The SDK's error may quote the DSN, whose user part is the project's key.
		return nil, errors.New("POSTIE_SENTRY_DSN: not a Sentry DSN (want https://KEY@HOST/PROJECT-ID)")
	}
	return &Sentry{client: client, log: Log(log)}, nil
}

// Panic logs and sends a recovered panic, with the stack where it happened.
func (s *Sentry) Panic(ctx context.Context, where string, v any, stack []byte) {
	s.log.Panic(ctx, where, v, stack)
	e := s.event(where)
	e.Level = sentry.LevelFatal
	ex := sentry.Exception{Type: "panic", Value: fmt.Sprint(v),
		Mechanism: &sentry.Mechanism{Type: "recover", Handled: new(true)}}
	if err, ok := v.(error); ok {
		ex.Type = reflect.TypeOf(err).String()
	}
	if frames := stackFrames(stack); len(frames) > 0 {
		ex.Stacktrace = &sentry.Stacktrace{Frames: frames}
	}
	e.Exception = []sentry.Exception{ex}
	s.client.CaptureEvent(e, nil, nil)
}

// Error logs and sends an unexpected error, with the stack of the caller and the chain of
// wrapped errors.
func (s *Sentry) Error(ctx context.Context, where string, err error) {
	s.log.Error(ctx, where, err)
	e := s.client.EventFromException(err, sentry.LevelError)
	e.Message = where
	e.Tags = map[string]string{"where": where}
	// Without a stack of its own, an error gets the caller's: drop this package's frames.
	for i := range e.Exception {
		if st := e.Exception[i].Stacktrace; st != nil {
			for len(st.Frames) > 1 && st.Frames[len(st.Frames)-1].Module == "github.com/postie/postie/internal/errtrack" {
				st.Frames = st.Frames[:len(st.Frames)-1]
			}
		}
	}
	s.client.CaptureEvent(e, nil, nil)
}

func (s *Sentry) event(where string) *sentry.Event {
	e := sentry.NewEvent()
	e.Message = where
	e.Tags = map[string]string{"where": where}
	return e
}

// Flush waits until the reports taken so far are sent, or ctx ends; it reports whether all were.
func (s *Sentry) Flush(ctx context.Context) bool { return s.client.FlushWithContext(ctx) }

// scrubEvent is the last step before an event leaves: see NewSentry.
func scrubEvent(e *sentry.Event) *sentry.Event {
	e.Request = nil
	e.User = sentry.User{}
	e.Message = Scrub(e.Message)
	for i := range e.Exception {
		e.Exception[i].Value = Scrub(e.Exception[i].Value)
	}
	for i := range e.Threads {
		e.Threads[i].Name = Scrub(e.Threads[i].Name)
	}
	for _, b := range e.Breadcrumbs {
		scrubBreadcrumb(b)
	}
	for k, v := range e.Tags {
		e.Tags[k] = Scrub(v)
	}
	for _, c := range e.Contexts {
		for k, v := range c {
			c[k] = scrubValue(v)
		}
	}
	return e
}

func scrubBreadcrumb(b *sentry.Breadcrumb) {
	if b == nil {
		return
	}
	b.Message = Scrub(b.Message)
	for k, v := range b.Data {
		b.Data[k] = scrubValue(v)
	}
}

// scrubValue scrubs a value of free form: text as text, anything else by its text form.
func scrubValue(v any) any {
	switch x := v.(type) {
	case nil, bool, int, int64, uint64, float64:
		return x
	case string:
		return Scrub(x)
	default:
		return Scrub(fmt.Sprint(x))
	}
}
