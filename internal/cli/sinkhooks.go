package cli

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postie/postie/internal/webhook"
)

// hookTolerance is how far a webhook-timestamp may be from this clock (the Standard Webhooks
// libraries' default).
const hookTolerance = 5 * time.Minute

// hookSink receives webhooks over HTTP for `postie sink --webhooks`: it prints one line per
// request (its type, webhook-id, whether the signature holds, and the payload) and answers 204,
// or 401 when a secret is given and the signature does not verify with it.
type hookSink struct {
	secret string // "" prints without checking
	out    io.Writer
	mu     *sync.Mutex // shared with the SMTP sink's lines
	now    func() time.Time
}

// listenHooks serves h on addr until the returned server is closed, and returns the address
// it listens on.
func listenHooks(addr string, h *hookSink) (*http.Server, string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv, l.Addr().String(), nil
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	var typ struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &typ)
	check := "signature not checked (no --webhook-secret)"
	ok := true
	if h.secret != "" {
		if err := verifyHook(h.secret, r.Header, body, h.now()); err != nil {
			check, ok = "signature REFUSED: "+err.Error(), false
		} else {
			check = "signature ok"
		}
	}
	h.mu.Lock()
	fmt.Fprintf(h.out, "webhook  %s %s, %s\n         %s\n", typ.Type, r.Header.Get(webhook.HeaderID), check, strings.TrimSpace(string(body)))
	h.mu.Unlock()
	if !ok {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// verifyHook checks the Standard Webhooks headers of a request against body: a timestamp within
// hookTolerance of now, and a v1 signature by secret among the header's entries.
func verifyHook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get(webhook.HeaderID), h.Get(webhook.HeaderTimestamp), h.Get(webhook.HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing %s, %s or %s", webhook.HeaderID, webhook.HeaderTimestamp, webhook.HeaderSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not Unix seconds", webhook.HeaderTimestamp, ts)
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > hookTolerance || d < -hookTolerance {
		return fmt.Errorf("%s is %s away from this clock", webhook.HeaderTimestamp, d.Round(time.Second))
	}
	want, err := webhook.Sign(secret, id, at, body)
	if err != nil {
		return err
	}
	for entry := range strings.FieldsSeq(sigs) {
		if hmac.Equal([]byte(entry), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no v1 signature by this secret")
}
