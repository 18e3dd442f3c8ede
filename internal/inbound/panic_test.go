package inbound_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/inbound"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store"
)

// panicReports is an errtrack.Reporter keeping the panics it is told of.
type panicReports struct {
	mu   sync.Mutex
	got  []string
	told chan struct{} // a value per panic
}

func (r *panicReports) Panic(_ context.Context, where string, v any, stack []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s: %v (stack %t)", where, v, len(stack) > 0))
	r.told <- struct{}{}
}
func (r *panicReports) Error(context.Context, string, error) {}

// TestSubmissionPanicIsReported: a panic in a session is answered 421 by go-smtp, reported with
// its stack, and the server goes on serving.
func TestSubmissionPanicIsReported(t *testing.T) {
	t.Parallel()
	rep := &panicReports{told: make(chan struct{}, 10)}
	b := setup(t, options{mod: func(c *inbound.SubmissionConfig) {
		c.Errors = rep
		c.SenderAllowed = func(_ store.APIKey, _, from mail.Address) error {
			if from.Email == "boom@shop.example" {
				panic("sender check bug")
			}
			return nil
		}
	}})
	c := b.login(t)
	r := c.send("boom@shop.example", []string{"ann@example.com"}, strings.Replace(goodMsg, "orders@", "boom@", 1))
	if !strings.HasPrefix(r, "421") {
		t.Errorf("DATA after a panic: %q, want 421", r)
	}
	// go-smtp answers before it logs the panic.
	select {
	case <-rep.told:
	case <-time.After(10 * time.Second):
		t.Fatal("the panic was not reported")
	}
	rep.mu.Lock()
	got := append([]string(nil), rep.got...)
	rep.mu.Unlock()
	if len(got) != 1 || got[0] != "smtp submission: sender check bug (stack true)" {
		t.Errorf("reports = %q", got)
	}
	if r := b.login(t).send("orders@shop.example", []string{"ann@example.com"}, goodMsg); !strings.HasPrefix(r, "250") {
		t.Errorf("the next session: %q", r)
	}
}
