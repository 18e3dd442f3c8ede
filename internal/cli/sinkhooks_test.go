package cli

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/webhook"
)

// TestSinkWebhooks: `postie sink --listen "" --webhooks ADDR --webhook-secret S` prints each
// webhook it receives, answers 204 to one signed with S (or by S among other entries, as
// during a rotation), and 401 to one signed otherwise, too old, or unsigned.
func TestSinkWebhooks(t *testing.T) {
	t.Parallel()
	secret, other := webhook.NewSecret(), webhook.NewSecret()
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sink", "--listen", "", "--webhooks", "127.0.0.1:0", "--webhook-secret", secret},
			func(string) string { return "" }, &out, &out)
	}()
	var url string
	deadline := time.Now().Add(10 * time.Second)
	for url == "" {
		if m := regexp.MustCompile(`(http://\S+/)\n`).FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no address printed: %s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	body := `{"type":"message.sent","timestamp":"2026-12-06T10:00:00Z","data":{"recipient":"ada@example.com"}}`
	post := func(id string, at time.Time, secrets ...string) int {
		t.Helper()
		var sigs []string
		for _, s := range secrets {
			sig, err := webhook.Sign(s, id, at, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			sigs = append(sigs, sig)
		}
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set(webhook.HeaderID, id)
		req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
		req.Header.Set(webhook.HeaderSignature, strings.Join(sigs, " "))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now()
	for _, tc := range []struct {
		id      string
		at      time.Time
		secrets []string
		want    int
	}{
		{"whd_1", now, []string{secret}, 204},
		{"whd_2", now, []string{other, secret}, 204},
		{"whd_3", now, []string{other}, 401},
		{"whd_4", now.Add(-10 * time.Minute), []string{secret}, 401},
		{"whd_5", now, nil, 401},
	} {
		if got := post(tc.id, tc.at, tc.secrets...); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.id, got, tc.want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("sink exited %d", code)
	}
	printed := out.String()
	for _, want := range []string{"webhook  message.sent whd_1, signature ok\n         " + body, "whd_2, signature ok",
		"whd_3, signature REFUSED: no v1 signature", "whd_4, signature REFUSED", "whd_5, signature REFUSED: missing"} {
		if !strings.Contains(printed, want) {
			t.Errorf("the output lacks %q:\n%s", want, printed)
		}
	}
}
