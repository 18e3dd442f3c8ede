package main_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// TestPostfixRoundTrip is the bounce round trip users have in production, against a real Postfix
// (scripts/postfix.sh, started by make test): postie relays a message through Postfix to a
// local user Postfix does not have; Postfix accepts it, its local delivery fails, and its DSN
// goes to the message's envelope sender, postie's signed bounce address at bounce.test, which
// Postfix's transport table sends to postie's inbound listener. The message ends bounced, the
// address is suppressed everywhere, and a message.bounced webhook names the recipient.
func TestPostfixRoundTrip(t *testing.T) {
	relay, inbound := os.Getenv("POSTFIX_SMTP"), os.Getenv("POSTIE_TEST_INBOUND")
	if relay == "" || inbound == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("POSTFIX_SMTP and POSTIE_TEST_INBOUND are not set, and CI is: make test starts Postfix (scripts/postfix.sh)")
		}
		t.Skip("POSTFIX_SMTP and POSTIE_TEST_INBOUND are not set: start Postfix with `source scripts/postfix.sh && postfix_start` (make test does)")
	}
	t.Parallel()
	// Postfix sends every bounce to the one inbound address: the drivers take turns.
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			var db []string
			if driver == "postgres" {
				db = []string{"POSTIE_DATABASE_URL=" + pgtest.URL(t)}
			}
			postfixRoundTrip(t, relay, inbound, "nosuchuser-"+driver+"@postfix.test", db)
		})
	}
}

func postfixRoundTrip(t *testing.T, relay, inbound, rcpt string, db []string) {
	recv := startReceiver(t)
	p := start(t, t.TempDir(), eventsEnv(append(db, "POSTIE_API_KEY="+nodeKey, "POSTIE_FROM=app@example.com",
		"POSTIE_SMTP_URL=smtp://"+relay+"?tls=none", "POSTIE_BOUNCE_DOMAIN=bounce.test",
		"POSTIE_INBOUND_LISTEN="+inbound, "POSTIE_SMTP_HOSTNAME=postie.test")...)...)
	makeWebhook(t, p, recv, "message.bounced")

	var sent struct{ ID string }
	call(t, p, "POST", "/v1/messages", map[string]any{"to": []string{rcpt}, "subject": "Round trip",
		"text": "Postfix has no such user."}, 202, &sent)

	// Postfix retries its bounce every second until postie's listener takes it.
	m := p.waitStatus(nodeKey, sent.ID, "bounced")
	if b, _ := json.Marshal(m); !strings.Contains(string(b), rcpt) {
		t.Errorf("the bounced message does not name %s: %s", rcpt, b)
	}

	var sups struct {
		Data []struct{ Email, Scope, Reason string }
	}
	call(t, p, "GET", "/v1/suppressions?email="+url.QueryEscape(rcpt), nil, 200, &sups)
	if len(sups.Data) != 1 || sups.Data[0].Scope != "global" || sups.Data[0].Reason != "hard_bounce" {
		t.Errorf("suppressions of %s: %+v, want one global hard_bounce", rcpt, sups.Data)
	}

	hooks := recv.waitDelivered(t, "message.bounced", 1, 30*time.Second)
	if got := fmt.Sprintf("%v %v", hooks[0].Data["recipient"], hooks[0].Data["message_id"]); got != rcpt+" "+sent.ID {
		t.Errorf("message.bounced names %q, want %s %s: %+v", got, rcpt, sent.ID, hooks[0].Data)
	}
	recv.check(t)
	p.stop()
}
