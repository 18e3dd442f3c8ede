// Package capture is the development transport: it accepts every message and sends nothing. The
// message's MIME is already stored with the message, so GET /v1/messages/{id}/raw shows exactly
// what would have gone out. It is the default when no relay is configured.
package capture

import (
	"context"
	"sync/atomic"

	"github.com/postie/postie/internal/transport"
)

// Transport is the capture transport. The zero value is not usable; call New.
type Transport struct {
	sent atomic.Int64
}

// New returns a capture transport.
func New() *Transport { return &Transport{} }

// Name returns "capture".
func (t *Transport) Name() string { return "capture" }

// Send accepts the message without sending it anywhere.
func (t *Transport) Send(ctx context.Context, env transport.Envelope, raw []byte) (transport.Result, error) {
	if err := ctx.Err(); err != nil {
		return transport.Result{}, &transport.Error{Class: transport.Temporary, Text: "cancelled", Err: err}
	}
	t.sent.Add(1)
	return transport.Result{
		ProviderID: "capture-" + env.MessageID,
		Response:   "250 2.0.0 captured (nothing leaves the machine)",
	}, nil
}

// Sent returns how many messages were captured since start.
func (t *Transport) Sent() int64 { return t.sent.Load() }

// Close does nothing.
func (t *Transport) Close() error { return nil }
