package config

import (
	"strings"
	"testing"
)

func TestSecretKeys(t *testing.T) {
	t.Parallel()
	k32 := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" // 32 bytes of 1
	for _, tc := range []struct {
		in      string
		ids     []string
		wantErr string
	}{
		{"", nil, ""},
		{"k1:" + k32, []string{"k1"}, ""},
		{"k2:" + strings.TrimRight(k32, "=") + " , k1:" + k32, []string{"k2", "k1"}, ""},
		{"k1:" + strings.ReplaceAll(k32, "+", "-"), []string{"k1"}, ""},
		{k32, nil, "want id:base64"},
		{"k1:c2hvcnQ=", nil, "want at least 32"},
		{"k1:***", nil, "not base64"},
		{"k1:" + k32 + ",k1:" + k32, nil, "used twice"},
		{"auto:" + k32, nil, "reserved"},
		{"bad id:" + k32, nil, "the id must be"},
	} {
		c := Default()
		c.SecretKey = tc.in
		keys, err := c.SecretKeys()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("SecretKeys(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "AQEB") {
				t.Errorf("SecretKeys(%q) error shows the secret: %v", tc.in, err)
			}
			if c.Validate() == nil {
				t.Errorf("Validate accepted POSTIE_SECRET_KEY=%q", tc.in)
			}
			continue
		}
		if err != nil || len(keys) != len(tc.ids) {
			t.Fatalf("SecretKeys(%q) = %v, %v", tc.in, keys, err)
		}
		for i, k := range keys {
			if k.ID != tc.ids[i] || len(k.Secret) != 32 {
				t.Errorf("SecretKeys(%q)[%d] = %s (%d bytes)", tc.in, i, k.ID, len(k.Secret))
			}
		}
	}
}
