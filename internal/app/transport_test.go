package app

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/postie/postie/internal/config"
)

// TestInsecureRelayWarns: a relay URL with tls=insecure logs a warning each time the transport
// is built (every start); a verified one does not.
func TestInsecureRelayWarns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		warn bool
	}{
		{"smtp://127.0.0.1:2525?tls=insecure", true},
		{"smtps://127.0.0.1:4650?tls=insecure", true},
		{"smtp://127.0.0.1:2525", false},
	} {
		var buf bytes.Buffer
		tr, err := NewTransport(config.Config{SMTPURL: tc.url}, slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		tr.Close()
		warned := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "tls=insecure")
		if warned != tc.warn {
			t.Errorf("%s: logged %q; want a warning: %v", tc.url, buf.String(), tc.warn)
		}
	}
}
