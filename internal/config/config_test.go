package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestEverySettingIsTagged(t *testing.T) {
	t.Parallel()
	var c Config
	seen := map[string]bool{}
	for _, s := range settings(&c) {
		if !strings.HasPrefix(s.env, "POSTIE_") || s.flag == "" || s.usage == "" {
			t.Errorf("setting %+v lacks env, flag or usage tags", s)
		}
		if seen[s.env] || seen[s.flag] {
			t.Errorf("duplicate setting %s/%s", s.env, s.flag)
		}
		seen[s.env], seen[s.flag] = true, true
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil), nil)
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DatabaseURL != "sqlite:postie-data/postie.db" || len(c.RetryDelays) != 3 ||
		c.DBPool != 10 || c.DBStmtTimeout != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}

	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse([]string{"--lease", "90s", "--max-batch", "100"}); err != nil {
		t.Fatal(err)
	}
	c, err = Load(env(map[string]string{
		"POSTIE_LEASE": "30s", "POSTIE_RETRY_DELAYS": "5s, 1m", "POSTIE_MAX_MESSAGE_SIZE": "1048576",
		"POSTIE_FROM": "Shop <news@shop.example>", "POSTIE_DB_POOL": "25", "POSTIE_DB_STATEMENT_TIMEOUT": "5s",
		"POSTIE_CAMPAIGN_QUOTA_SHARE": "0.5",
	}), fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Lease != 90*time.Second || c.MaxBatch != 100 {
		t.Errorf("flags must win over the environment: lease %v, max batch %d", c.Lease, c.MaxBatch)
	}
	if len(c.RetryDelays) != 2 || c.RetryDelays[1] != time.Minute || c.MaxMessageSize != 1<<20 {
		t.Errorf("environment not applied: %v %d", c.RetryDelays, c.MaxMessageSize)
	}
	if c.CampaignWindow != 2000 || c.CampaignMissedGrace != time.Hour || c.CampaignQuotaShare != 0.5 || c.CampaignComplaintRate != 0.003 {
		t.Errorf("campaign settings: %d %v %v %v", c.CampaignWindow, c.CampaignMissedGrace, c.CampaignQuotaShare, c.CampaignComplaintRate)
	}
	if c.DBPool != 25 || c.DBStmtTimeout != 5*time.Second {
		t.Errorf("database settings not applied: pool %d, statement timeout %v", c.DBPool, c.DBStmtTimeout)
	}

	_, err = Load(env(map[string]string{
		"POSTIE_LISTEN": "nope", "POSTIE_LEASE": "soon", "POSTIE_FROM": "a@", "POSTIE_MAX_BATCH": "x",
		"POSTIE_SMTP_URL": "ftp://u:secret@h", "POSTIE_DATABASE_URL": "mysql://x", "POSTIE_DB_POOL": "0",
		"POSTIE_DB_STATEMENT_TIMEOUT": "-1s",
	}), nil)
	for _, want := range []string{"POSTIE_LISTEN", "POSTIE_LEASE", "POSTIE_FROM", "POSTIE_MAX_BATCH", "POSTIE_SMTP_URL",
		"POSTIE_DATABASE_URL", "POSTIE_DB_POOL", "POSTIE_DB_STATEMENT_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("a password leaked into the error: %v", err)
	}
}

// TestValidateListsEveryProblem: one Load with several bad settings names each of them in one
// error, those only the relay's URL parser finds (a query parameter) included.
func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"POSTIE_LISTEN":           "nope",
		"POSTIE_NODE_ID":          "web/1",
		"POSTIE_BEHIND_PROXY":     "perhaps",
		"POSTIE_LEASE":            "10ms",
		"POSTIE_MAX_RECIPIENTS":   "0",
		"POSTIE_MAX_MESSAGE_SIZE": "12",
		"POSTIE_LOG_FORMAT":       "xml",

		"POSTIE_CAMPAIGN_WINDOW":         "0",
		"POSTIE_CAMPAIGN_MISSED_GRACE":   "1s",
		"POSTIE_CAMPAIGN_QUOTA_SHARE":    "1.5",
		"POSTIE_CAMPAIGN_COMPLAINT_RATE": "a lot",
	}
	_, err := Load(env(bad), nil)
	if err == nil {
		t.Fatal("Load accepted bad settings")
	}
	for name := range bad {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("the error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("a password leaked into the error: %v", err)
	}
}

func TestNodeID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"postie-0", true},
		{"postie-0.postie.prod.svc.cluster.local:8080", true},
		{"web_1", true},
		{"A1", true},
		{"", false},
		{"web/1", false}, // '/' separates the node id from the process part of a lease owner
		{"-web", false},  // must start with a letter or digit
		{"web 1", false}, // no spaces
		{"wéb", false},   // ASCII only
		{"web%", false},  // no SQL wildcards beyond '_'
		{strings.Repeat("a", maxNodeID), true},
		{strings.Repeat("a", maxNodeID+1), false},
	} {
		err := CheckNodeID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("CheckNodeID(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
		c := Default()
		c.NodeID = tc.id
		if err := c.Validate(); tc.id != "" && (err == nil) != tc.ok {
			t.Errorf("Validate with POSTIE_NODE_ID=%q: %v, want ok %v", tc.id, err, tc.ok)
		}
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse([]string{"--node-id", "postie-1", "--behind-proxy"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"POSTIE_NODE_ID": "postie-0"}), fs)
	if err != nil || c.NodeID != "postie-1" || !c.BehindProxy {
		t.Errorf("Load = %q behind proxy %v, %v; want the flags' postie-1, true", c.NodeID, c.BehindProxy, err)
	}
}

// The in-flight budget defaults to two of the largest messages and follows
// POSTIE_MAX_MESSAGE_SIZE; it and the write timeout are validated with the other settings.
func TestInflightBytesAndWriteTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		env      map[string]string
		inflight int64
		write    time.Duration
		bad      string // the variable the error names; "" for none
	}{
		{"defaults", nil, 50 << 20, 2 * time.Minute, ""},
		{"follows the message size", map[string]string{"POSTIE_MAX_MESSAGE_SIZE": "1048576"}, 2 << 20, 2 * time.Minute, ""},
		{"set", map[string]string{"POSTIE_MAX_INFLIGHT_BYTES": "209715200", "POSTIE_WRITE_TIMEOUT": "30s"}, 200 << 20, 30 * time.Second, ""},
		{"budget under 1 MiB", map[string]string{"POSTIE_MAX_INFLIGHT_BYTES": "65536"}, 0, 0, "POSTIE_MAX_INFLIGHT_BYTES"},
		{"negative budget", map[string]string{"POSTIE_MAX_INFLIGHT_BYTES": "-1"}, 0, 0, "POSTIE_MAX_INFLIGHT_BYTES"},
		{"write timeout under 1s", map[string]string{"POSTIE_WRITE_TIMEOUT": "10ms"}, 0, 0, "POSTIE_WRITE_TIMEOUT"},
	} {
		c, err := Load(env(tc.env), nil)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.bad)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.InflightBytes(); got != tc.inflight || c.WriteTimeout != tc.write {
			t.Errorf("%s: in-flight budget %d, write timeout %v; want %d, %v", tc.name, got, c.WriteTimeout, tc.inflight, tc.write)
		}
	}
}

func TestAdminAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen, want string
		valid        bool
	}{
		{"127.0.0.1:9464", "127.0.0.1:9464", true},
		{":9464", ":9464", true},
		{"off", "", true},
		{"Off", "", true},
		{"", "", true},
		{"9464", "9464", false},
	} {
		c := Default()
		c.AdminListen = tc.listen
		if got := c.AdminAddr(); got != tc.want {
			t.Errorf("AdminAddr of %q = %q, want %q", tc.listen, got, tc.want)
		}
		err := c.Validate()
		if (err == nil) != tc.valid || err != nil && !strings.Contains(err.Error(), "POSTIE_ADMIN_LISTEN") {
			t.Errorf("Validate with POSTIE_ADMIN_LISTEN=%q: %v, want valid %v", tc.listen, err, tc.valid)
		}
	}
}
