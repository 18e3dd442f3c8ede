package audience

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"time"

	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// Confirmations sends the double opt-in confirmation message of a pending subscription through
// the transactional stream (Config.OnPending): its link (Links.ConfirmURL, valid
// ConfirmValidity) opens a page whose button confirms.
type Confirmations struct {
	Store    store.Audience
	Messages *message.Service
	Links    *Links
	// Template, when set, names the stored template of the message; it gets
	// {{.data.confirm_url}}, {{.data.list.name}} and {{.data.list.description}}. Without one
	// the built-in message is sent.
	Template string
	Now      func() time.Time
	Logger   *slog.Logger
}

// Send sends one confirmation message per list to the contact; a failure is logged (the
// subscription stays pending; a new subscribe sends again).
func (c *Confirmations) Send(ctx context.Context, contactID string, listIDs []string) {
	if err := c.send(ctx, contactID, listIDs); err != nil && c.Logger != nil {
		c.Logger.Error("sending the double opt-in confirmation failed", "contact", contactID, "err", err)
	}
}

func (c *Confirmations) send(ctx context.Context, contactID string, listIDs []string) error {
	ct, err := c.Store.ContactGet(ctx, store.ContactRef{ID: contactID})
	if err != nil {
		return err
	}
	now := c.Now()
	reqs := make([]message.Request, 0, len(listIDs))
	for _, id := range listIDs {
		l, err := c.Store.ListGet(ctx, id)
		if err != nil {
			return err
		}
		link := c.Links.ConfirmURL(ct.ID, ct.EmailKey, l.ID, now)
		req := message.Request{To: []string{ct.Email}, Stream: store.StreamTransactional,
			Tags: []string{"double-opt-in"}, Metadata: map[string]string{"list_id": l.ID, "contact_id": ct.ID}}
		if c.Template != "" {
			data, err := json.Marshal(map[string]any{"confirm_url": link,
				"list": map[string]string{"id": l.ID, "name": l.Name, "description": l.Description}})
			if err != nil {
				return err
			}
			req.Template, req.Data, req.Locale = c.Template, data, ct.Locale
		} else {
			req.Subject = "Please confirm your subscription to " + l.Name
			req.Text = fmt.Sprintf("Please confirm that you want to receive %s:\n\n%s\n\nThe link works for 7 days. If you did not ask for this, ignore this message.\n", l.Name, link)
			req.HTML = fmt.Sprintf(`<p>Please confirm that you want to receive %s.</p><p><a href="%s">Confirm my subscription</a></p><p>The link works for 7 days. If you did not ask for this, ignore this message.</p>`,
				html.EscapeString(l.Name), html.EscapeString(link))
		}
		reqs = append(reqs, req)
	}
	acc, err := c.Messages.Accept(ctx, message.AcceptParams{Requests: reqs, Now: now})
	if err != nil {
		return err
	}
	for _, r := range acc.Results {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}
