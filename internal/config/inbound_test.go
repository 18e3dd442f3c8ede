package config

import (
	"strings"
	"testing"
)

func TestInboundListenNeedsBounceDomain(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{"POSTIE_INBOUND_LISTEN": "127.0.0.1:2525"}), nil)
	if err == nil || !strings.Contains(err.Error(), "POSTIE_INBOUND_LISTEN") || !strings.Contains(err.Error(), "POSTIE_BOUNCE_DOMAIN") {
		t.Errorf("inbound listener without a bounce domain: %v, want an error naming both", err)
	}
	for _, e := range []map[string]string{
		{"POSTIE_INBOUND_LISTEN": "127.0.0.1:2525", "POSTIE_BOUNCE_DOMAIN": "bounce.shop.example"},
		{"POSTIE_INBOUND_LISTEN": "127.0.0.1:2525", "POSTIE_BOUNCE_DOMAINS": "shop.example=bounce.shop.example"},
	} {
		if _, err := Load(env(e), nil); err != nil {
			t.Errorf("%v: %v", e, err)
		}
	}
}
