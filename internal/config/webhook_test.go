package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWebhookSettings(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.WebhookRetryDelays) != 7 || c.WebhookRetryDelays[0] != 5*time.Second || c.WebhookRetryDelays[6] != 10*time.Hour ||
		c.WebhookDisableAfter != 72*time.Hour || c.WebhookTimeout != 10*time.Second || c.WebhookConcurrency != 128 ||
		c.WebhookAllowHTTP || c.WebhookAllow != "" {
		t.Fatalf("defaults: %v %v %v %d %v %q", c.WebhookRetryDelays, c.WebhookDisableAfter, c.WebhookTimeout,
			c.WebhookConcurrency, c.WebhookAllowHTTP, c.WebhookAllow)
	}
	c, err = Load(env(map[string]string{"POSTIE_WEBHOOK_ALLOW": "loopback, 10.1.0.0/16,192.168.7.9, fd00::1, PRIVATE",
		"POSTIE_WEBHOOK_ALLOW_HTTP": "true", "POSTIE_WEBHOOK_RETRY_DELAYS": "1s,2s", "POSTIE_WEBHOOK_DISABLE_AFTER": "10s",
		"POSTIE_WEBHOOK_TIMEOUT": "2s", "POSTIE_WEBHOOK_CONCURRENCY": "4"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	allow, _ := c.WebhookAllowList()
	want := []string{"127.0.0.0/8", "::1/128", "10.1.0.0/16", "192.168.7.9/32", "fd00::1/128", "10.0.0.0/8", "172.16.0.0/12",
		"192.168.0.0/16", "fc00::/7"}
	if got := prefixStrings(allow); !slices.Equal(got, want) {
		t.Errorf("allow list %v, want %v", got, want)
	}
	if !c.WebhookAllowHTTP || len(c.WebhookRetryDelays) != 2 || c.WebhookDisableAfter != 10*time.Second ||
		c.WebhookTimeout != 2*time.Second || c.WebhookConcurrency != 4 {
		t.Errorf("not applied: %+v", c)
	}

	for _, tc := range []struct{ env, value, want string }{
		{"POSTIE_WEBHOOK_ALLOW", "10.0.0.0/33", "not a CIDR"},
		{"POSTIE_WEBHOOK_ALLOW", "intranet", "want a CIDR"},
		{"POSTIE_WEBHOOK_ALLOW_HTTP", "yes please", "true or false"},
		{"POSTIE_WEBHOOK_RETRY_DELAYS", "5s,soon", "not a positive duration"},
		{"POSTIE_WEBHOOK_RETRY_DELAYS", "5s,-1s", "not a positive duration"},
		{"POSTIE_WEBHOOK_DISABLE_AFTER", "-1h", "must be positive"},
		{"POSTIE_WEBHOOK_TIMEOUT", "10ms", "between 100ms and 5m"},
		{"POSTIE_WEBHOOK_TIMEOUT", "1h", "between 100ms and 5m"},
		{"POSTIE_WEBHOOK_CONCURRENCY", "0", "between 1 and 1024"},
		{"POSTIE_WEBHOOK_CONCURRENCY", "many", "not an integer"},
	} {
		_, err := Load(env(map[string]string{tc.env: tc.value}), nil)
		if err == nil || !strings.Contains(err.Error(), tc.env) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want an error naming it and saying %q", tc.env, tc.value, err, tc.want)
		}
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
