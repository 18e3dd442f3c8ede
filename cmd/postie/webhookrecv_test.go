package main_test

// A Standard Webhooks receiver for the tests of the real binary: an HTTP server on loopback that
// verifies every request's signature with its own implementation of the specification's
// algorithm (not postie's), can fail on purpose (answer an error status, or hang) for as long as
// a test wants, and records every payload by webhook-id, so a test can check that nothing was
// lost, nothing was signed wrongly and a webhook-id always carried the same payload.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// webhookTolerance is how far a webhook-timestamp may be from the receiver's clock, as the
// specification's reference libraries allow.
const webhookTolerance = 5 * time.Minute

// swSign is the specification's signature of one payload: "v1," and the base64 of the
// HMAC-SHA256, keyed with the base64-decoded part of the secret after "whsec_", of
// "<webhook-id>.<webhook-timestamp>.<body>".
func swSign(secret, id, timestamp string, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", fmt.Errorf("secret is not base64 after whsec_: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// swVerify checks a request's webhook-id, webhook-timestamp and webhook-signature headers
// against body: the timestamp within webhookTolerance of now, and at least one of the
// signature's space-separated entries a v1 signature by one of secrets. Entries of other
// versions are ignored, as the specification asks.
func swVerify(secrets []string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing header: webhook-id %q, webhook-timestamp %q, webhook-signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not unix seconds", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > webhookTolerance || d < -webhookTolerance {
		return fmt.Errorf("webhook-timestamp %s is %s away from now", ts, d)
	}
	for _, secret := range secrets {
		want, err := swSign(secret, id, ts, body)
		if err != nil {
			return err
		}
		for entry := range strings.FieldsSeq(sigs) {
			if strings.HasPrefix(entry, "v1,") && hmac.Equal([]byte(entry), []byte(want)) {
				return nil
			}
		}
	}
	return fmt.Errorf("no v1 signature of webhook-id %s by the %d secret(s) in %q", id, len(secrets), sigs)
}

// webhookPayload is one payload as received.
type webhookPayload struct {
	ID        string         // the webhook-id
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// str is the string at key of the payload's data ("" when absent or not a string).
func (p webhookPayload) str(key string) string {
	s, _ := p.Data[key].(string)
	return s
}

// Modes of a receiver.
const (
	recvOK   = iota // answer 204 to every correctly signed request
	recvFail        // answer failCode
	recvHang        // answer nothing until the mode changes or the sender gives up
)

// receiverDown is the body of an answer that fails on purpose: the sender's deliveries should
// show its start as the response excerpt.
const receiverDown = "receiver down on purpose"

// webhookReceiver is a receiver on 127.0.0.1 (POSTIE_WEBHOOK_ALLOW=loopback lets postie reach
// it; its URL is http://, so POSTIE_WEBHOOK_ALLOW_HTTP=true too).
type webhookReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	secrets  []string
	ready    chan struct{} // closed when the first secret is set
	mode     int
	failCode int
	wake     chan struct{}             // closed (and replaced) when the mode changes: ends hangs
	first    map[string]webhookPayload // webhook-id → the payload of its first verified request
	answered map[string]int            // webhook-id → 2xx answers given
	order    []string                  // webhook-ids in the order of their first 2xx
	requests int                       // every request, whatever the answer
	bad      []string                  // requests that failed verification, and why
	changed  []string                  // webhook-ids whose payload changed between requests
	changes  chan struct{}             // closed (and replaced) at every recorded request
}

// startReceiver starts a receiver answering 204; setSecret must be called (with the secret
// postie gave for the endpoint) before requests are answered.
func startReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{t: t, ready: make(chan struct{}), wake: make(chan struct{}), changes: make(chan struct{}),
		first: map[string]webhookPayload{}, answered: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.setMode(recvOK, 0) // ends hangs, which Close would otherwise wait for
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

// url is the receiver's address with path.
func (r *webhookReceiver) url(path string) string { return r.srv.URL + path }

// setSecret sets the secrets a signature may be made with (a rotation's old and new one).
func (r *webhookReceiver) setSecret(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = secrets
	select {
	case <-r.ready:
	default:
		close(r.ready)
	}
}

// setMode makes the receiver answer 204 (recvOK), code (recvFail) or nothing (recvHang) from now
// on; a request hanging when the mode changes gets the new mode's answer.
func (r *webhookReceiver) setMode(mode, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode, r.failCode = mode, code
	close(r.wake)
	r.wake = make(chan struct{})
}

func (r *webhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	select {
	case <-r.ready:
	case <-req.Context().Done():
		return
	case <-time.After(10 * time.Second):
		http.Error(w, "the test set no secret", http.StatusServiceUnavailable)
		return
	}
	r.mu.Lock()
	r.requests++
	id := req.Header.Get("webhook-id")
	var p webhookPayload
	err = swVerify(r.secrets, req.Header, body, time.Now())
	if err == nil {
		if req.Method != http.MethodPost || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
			err = fmt.Errorf("%s with Content-Type %q, want a POST of application/json", req.Method, req.Header.Get("Content-Type"))
		} else if err = json.Unmarshal(body, &p); err == nil && (p.Type == "" || p.Timestamp == "" || p.Data == nil) {
			err = errors.New("payload without type, timestamp or data")
		}
	}
	if err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%s: %v: %.200s", id, err, body))
		r.notify()
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.ID = id
	if was, ok := r.first[id]; !ok {
		r.first[id] = p
	} else if was.Type != p.Type || was.Timestamp != p.Timestamp || !reflect.DeepEqual(was.Data, p.Data) {
		r.changed = append(r.changed, fmt.Sprintf("%s: %+v, then %+v", id, was, p))
	}
	r.notify()
	for r.mode == recvHang {
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-req.Context().Done():
			return
		}
		r.mu.Lock()
	}
	if r.mode == recvFail {
		code := r.failCode
		r.mu.Unlock()
		http.Error(w, receiverDown, code)
		return
	}
	if r.answered[id] == 0 {
		r.order = append(r.order, id)
	}
	r.answered[id]++
	r.notify()
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// notify wakes the waiters; r.mu is held.
func (r *webhookReceiver) notify() {
	close(r.changes)
	r.changes = make(chan struct{})
}

// delivered returns the payloads of type typ ("" for every type) answered with a 2xx, one per
// webhook-id, in the order of their first 2xx.
func (r *webhookReceiver) delivered(typ string) []webhookPayload {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []webhookPayload
	for _, id := range r.order {
		if p := r.first[id]; typ == "" || p.Type == typ {
			out = append(out, p)
		}
	}
	return out
}

// seen returns the webhook-ids of type typ of every verified request, answered or not, sorted.
func (r *webhookReceiver) seen(typ string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, p := range r.first {
		if typ == "" || p.Type == typ {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// requestCount is how many requests the receiver has had, whatever it answered.
func (r *webhookReceiver) requestCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// waitFor waits until cond (called with r.mu held) holds, failing the test after within with
// what describe says.
func (r *webhookReceiver) waitFor(t *testing.T, within time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, changes := cond(), r.changes
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changes:
		case <-deadline.C:
			t.Fatalf("after %v: %s", within, describe())
		}
	}
}

// waitDelivered waits until n distinct payloads of type typ have been answered with a 2xx.
func (r *webhookReceiver) waitDelivered(t *testing.T, typ string, n int, within time.Duration) []webhookPayload {
	t.Helper()
	count := func() int {
		c := 0
		for _, id := range r.order {
			if r.first[id].Type == typ {
				c++
			}
		}
		return c
	}
	r.waitFor(t, within, func() bool { return count() >= n }, func() string {
		r.mu.Lock()
		defer r.mu.Unlock()
		return fmt.Sprintf("the receiver has %d %s payloads, want %d (%d requests, %d bad: %.500q)",
			count(), typ, n, r.requests, len(r.bad), r.bad)
	})
	return r.delivered(typ)
}

// check fails the test if a request failed verification or a webhook-id came with two
// different payloads.
func (r *webhookReceiver) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		t.Errorf("the receiver refused a request: %s", b)
	}
	for _, c := range r.changed {
		t.Errorf("a webhook-id came with another payload: %s", c)
	}
}

// TestStandardWebhooksVector checks the receiver's verification against the specification's
// published example (the reference libraries' signing test) and cases it must refuse.
func TestStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = "1614265330"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	if got, err := swSign(secret, id, ts, body); err != nil || got != want {
		t.Fatalf("signature %q, %v; the specification's is %q", got, err, want)
	}
	at := time.Unix(1614265330, 0)
	header := func(kv ...string) http.Header {
		h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {want}}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	other := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 24))
	for _, tc := range []struct {
		name    string
		secrets []string
		h       http.Header
		body    []byte
		now     time.Time
		ok      bool
	}{
		{"the example", []string{secret}, header(), body, at, true},
		{"4 minutes later", []string{secret}, header(), body, at.Add(4 * time.Minute), true},
		{"among other entries", []string{secret}, header("webhook-signature", "v1a,xyz v2,"+want[3:]+" "+want), body, at, true},
		{"the old secret of a rotation", []string{other, secret}, header(), body, at, true},
		{"another secret", []string{other}, header(), body, at, false},
		{"another body", []string{secret}, header(), []byte(`{"test": 2432232315}`), at, false},
		{"another id", []string{secret}, header("webhook-id", "msg_other"), body, at, false},
		{"another timestamp", []string{secret}, header("webhook-timestamp", "1614265331"), body, at, false},
		{"6 minutes later", []string{secret}, header(), body, at.Add(6 * time.Minute), false},
		{"6 minutes earlier", []string{secret}, header(), body, at.Add(-6 * time.Minute), false},
		{"only a v2 entry", []string{secret}, header("webhook-signature", "v2,"+want[3:]), body, at, false},
		{"no signature", []string{secret}, header("webhook-signature", ""), body, at, false},
		{"no id", []string{secret}, header("webhook-id", ""), body, at, false},
	} {
		if err := swVerify(tc.secrets, tc.h, tc.body, tc.now); (err == nil) != tc.ok {
			t.Errorf("%s: verify: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestWebhookReceiver drives the receiver as postie would: signed requests are recorded once
// per webhook-id, a failing or hanging receiver records what it was sent but answers it only
// once back, and a bad signature or a changed payload is reported by check.
func TestWebhookReceiver(t *testing.T) {
	t.Parallel()
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 24))
	r := startReceiver(t)
	r.setSecret(secret)
	send := func(id, secret, body string) int {
		t.Helper()
		code, err := signedPost(r.url("/hook"), id, secret, body)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	sent := `{"type":"message.sent","timestamp":"2026-12-06T10:00:00Z","data":{"recipient":"a@example.com"}}`
	if code := send("whd_1", secret, sent); code != 204 {
		t.Fatalf("first: %d", code)
	}
	r.setMode(recvFail, 500)
	if code := send("whd_2", secret, sent); code != 500 {
		t.Fatalf("while failing: %d", code)
	}
	r.setMode(recvHang, 0)
	hung := make(chan int)
	go func() {
		code, _ := signedPost(r.url("/hook"), "whd_3", secret, sent)
		hung <- code
	}()
	r.waitFor(t, 10*time.Second, func() bool { return r.requests == 3 }, func() string { return "the hanging request did not arrive" })
	select {
	case code := <-hung:
		t.Fatalf("a hanging receiver answered %d", code)
	default:
	}
	r.setMode(recvOK, 0)
	if code := <-hung; code != 204 {
		t.Fatalf("released hang: %d", code)
	}
	if code := send("whd_2", secret, sent); code != 204 {
		t.Fatalf("retry: %d", code)
	}
	if n := r.requestCount(); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
	if got := r.waitDelivered(t, "message.sent", 3, time.Second); len(got) != 3 || got[0].ID != "whd_1" || got[1].ID != "whd_3" || got[2].ID != "whd_2" ||
		got[2].str("recipient") != "a@example.com" {
		t.Errorf("delivered %+v", got)
	}
	if got := r.seen("message.sent"); !reflect.DeepEqual(got, []string{"whd_1", "whd_2", "whd_3"}) {
		t.Errorf("seen %v", got)
	}
	r.check(t)

	// What check reports, recorded on a receiver of its own.
	r2 := startReceiver(t)
	r2.setSecret(secret)
	if code, _ := signedPost(r2.url("/hook"), "whd_1", "whsec_"+base64.StdEncoding.EncodeToString([]byte("wrong key")), sent); code != 400 {
		t.Errorf("wrongly signed: %d, want 400", code)
	}
	_, _ = signedPost(r2.url("/hook"), "whd_2", secret, sent)
	_, _ = signedPost(r2.url("/hook"), "whd_2", secret, strings.Replace(sent, "a@", "b@", 1))
	r2.mu.Lock()
	bad, changed := len(r2.bad), len(r2.changed)
	r2.mu.Unlock()
	if bad != 1 || changed != 1 {
		t.Errorf("%d refused and %d changed payloads recorded, want 1 and 1", bad, changed)
	}
}

// signedPost posts body to url signed with secret as webhook-id id, as a Standard Webhooks
// sender does, and returns the answer's status.
func signedPost(url, id, secret, body string) (int, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := swSign(secret, id, ts, []byte(body))
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
