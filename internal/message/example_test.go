package message_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/templates"
)

// A campaign run renders each recipient from the template it resolved once: Compose builds the
// message (nothing is stored), and Store writes a chunk of them as one group.
func ExampleService_Compose() {
	svc := message.New(message.Config{
		DefaultFrom: "News <news@shop.example>", MaxRecipients: 50, MaxMessageSize: 10 << 20,
		MaxScheduleAhead: 30 * 24 * time.Hour, MessageTTL: 24 * time.Hour, MaxAttempts: 4,
	})
	weekly := rendererFunc(func(_ context.Context, p templates.RenderParams) (templates.Rendered, error) {
		var name string
		_ = json.Unmarshal(p.Data, &name)
		var out templates.Rendered
		out.Subject, out.Text = "This week for "+name, "Hello "+name
		return out, nil
	})
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	req := message.Request{To: []string{"ann@example.com"}, Template: "weekly", Renderer: weekly,
		Data: json.RawMessage(`"Ann"`), Stream: "broadcast"}
	c, err := svc.Compose(context.Background(), &req, message.ComposeParams{Now: now})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Message.Status, c.Message.Stream, c.Message.Subject, c.Message.Recipients, c.Message.ExpiresAt)
	// Output: queued broadcast This week for Ann [ann@example.com] 2026-12-02 09:00:00 +0000 UTC
}
