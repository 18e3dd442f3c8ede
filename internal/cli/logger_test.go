package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/postie/postie/internal/config"
)

// TestLoggerScrubsUnlessLogPII: the log masks addresses and keys by default, and writes them
// as they are with POSTIE_LOG_PII=true; POSTIE_LOG_FORMAT picks JSON or text.
func TestLoggerScrubsUnlessLogPII(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format string
		pii    bool
		want   string
	}{
		{"json", false, `"reply":"550 <***@x.example> unknown"`},
		{"text", false, `reply="550 <***@x.example> unknown"`},
		{"json", true, `"reply":"550 <bob@x.example> unknown"`},
	} {
		var buf bytes.Buffer
		cfg := config.Default()
		cfg.LogFormat, cfg.LogPII = tc.format, tc.pii
		log := (&env{stderr: &buf}).logger(cfg)
		log.Info("delivery outcome", "reply", "550 <bob@x.example> unknown")
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("format %s, pii %t: %s, want %s", tc.format, tc.pii, buf.String(), tc.want)
		}
	}
}
