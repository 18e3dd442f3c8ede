package errtrack

import (
	"context"
	"fmt"
	"log/slog"
)

// ScrubHandler wraps h so that every log line goes through Scrub: the message, and every
// attribute whose value is text (strings, errors, Stringers, lists of strings), in groups too.
// Numbers, times and durations pass unchanged. It is what POSTIE_LOG_PII=false installs, so
// that a relay reply quoting an address, or an error wrapping one, never reaches the log whole.
func ScrubHandler(h slog.Handler) slog.Handler { return scrubHandler{h} }

type scrubHandler struct{ h slog.Handler }

func (s scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }

func (s scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrubAttr(a))
		return true
	})
	return s.h.Handle(ctx, out)
}

func (s scrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	scrubbed := make([]slog.Attr, len(as))
	for i, a := range as {
		scrubbed[i] = scrubAttr(a)
	}
	return scrubHandler{s.h.WithAttrs(scrubbed)}
}

func (s scrubHandler) WithGroup(name string) slog.Handler { return scrubHandler{s.h.WithGroup(name)} }

func scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = scrubAttr(ga)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, Scrub(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, Scrub(x.String()))
		case []string:
			out := make([]string, len(x))
			for i, s := range x {
				out[i] = Scrub(s)
			}
			return slog.Any(a.Key, out)
		case []byte:
			return slog.String(a.Key, Scrub(string(x)))
		case nil:
			return a
		default:
			// Anything else (a struct, a map) is written as text, scrubbed.
			return slog.String(a.Key, Scrub(fmt.Sprintf("%+v", x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
