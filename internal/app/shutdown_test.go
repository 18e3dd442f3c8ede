package app

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
)

// TestShutdownWithinOneTimeout: with a send hanging at DATA and an HTTP request whose body
// never comes, SIGTERM ends Run within one POSTIE_SHUTDOWN_TIMEOUT (the engine and the HTTP
// drain share the deadline) instead of one after the other.
func TestShutdownWithinOneTimeout(t *testing.T) {
	t.Parallel()
	inData := make(chan struct{}, 1)
	sink := sinktest.Start(t, smtpsink.Options{Script: func(s smtpsink.Step) smtpsink.Action {
		if s.Stage != smtpsink.StageData {
			return smtpsink.Action{}
		}
		select {
		case inData <- struct{}{}:
		default:
		}
		return smtpsink.Action{Delay: time.Hour} // the send is in flight until Close
	}})
	const timeout = 3 * time.Second
	a, cfg := newApp(t, sink, func(c *config.Config) {
		c.From = "Shop <shop@shop.example>"
		c.ShutdownTimeout = timeout
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(cancel)

	postID(t, "http://"+a.Addr()+"/v1/messages", cfg.APIKey, map[string]any{"to": []string{"a@example.com"},
		"subject": "Hello", "html": "<p>Hi</p>"}, 202)
	<-inData
	// A request whose body never comes holds the HTTP drain until the deadline.
	c, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n", cfg.APIKey)

	// The 100 Continue says the handler is reading the body: the request is in flight.
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, " 100 ") {
		t.Fatalf("got %q, %v; want 100 Continue", line, err)
	}
	start := time.Now()
	cancel()
	<-done
	// Both drains take the whole timeout; one after the other they would take twice it.
	d := time.Since(start)
	t.Logf("shutdown took %v", d)
	if d >= 2*timeout {
		t.Errorf("shutdown took %v, want under 2 × %v (one shared deadline)", d, timeout)
	}
}
