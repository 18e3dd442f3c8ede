package campaign

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// TestTag marks the messages of a test send.
const TestTag = "test"

// Test sends the campaign's message to each of p.To now, as the run would (broadcast stream,
// list headers and footer), with the tag "test" and no run: nothing counts it. Every message is
// composed before any is stored: a bad address or a render failure stores nothing
// (KindInvalid naming "to[i]", "template", "data/…").
func (s *Service) Test(ctx context.Context, id string, p TestParams) ([]message.Result, error) {
	var pr problems
	switch {
	case len(p.To) == 0:
		pr.add("to", "at least one address", nil)
	case len(p.To) > MaxTestRecipients:
		pr.add("to", fmt.Sprintf("at most %d addresses in one test send", MaxTestRecipients), len(p.To))
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	listID := ""
	if len(c.Lists) > 0 {
		listID = c.Lists[0]
	}
	tags := slices.Clone(c.Tags)
	if !slices.Contains(tags, TestTag) {
		tags = append(tags, TestTag)
	}
	renderer := runRenderer{cat: s.cfg.Templates, version: c.TemplateVersion, subject: c.Subject}
	msgs := make([]store.NewMessage, 0, len(p.To))
	results := make([]message.Result, 0, len(p.To))
	for i, to := range p.To {
		// The contact a run would give (its address at least), with what the caller gave
		// laid over it, so that a template reading .contact.email renders as in a run.
		contact := audience.ContactData(store.Contact{Email: to})
		maps.Copy(contact, p.Contact)
		req := message.Request{From: c.From, ReplyTo: c.ReplyTo, To: []string{to}, Template: c.Template,
			TemplateVersion: c.TemplateVersion, Data: c.Data, Renderer: renderer, Tags: tags,
			Stream: store.StreamBroadcast, ListID: listID, Contact: contact,
			Campaign: campaignData(c, store.Run{}), CampaignID: c.ID}
		m, err := s.cfg.Messages.Compose(ctx, &req, message.ComposeParams{Now: now})
		var me *message.Error
		if errors.As(err, &me) && len(me.Problems) > 0 {
			for _, mp := range me.Problems {
				if mp.Field == "to" || strings.HasPrefix(mp.Field, "to[") {
					mp.Field = fmt.Sprintf("to[%d]", i)
				}
				pr = append(pr, mp)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		m.Message.CampaignID = c.ID
		msgs = append(msgs, m.NewMessage)
		results = append(results, message.Result{ID: m.Message.ID, Status: m.Message.Status, Warnings: m.Warnings})
	}
	if len(pr) > 0 {
		// One problem per field: the same render failure for every address is said once.
		var once problems
		for _, mp := range pr {
			if !slices.ContainsFunc(once, func(o message.Problem) bool { return o.Field == mp.Field && o.Message == mp.Message }) {
				once = append(once, mp)
			}
		}
		return nil, once.err()
	}
	if _, err := s.cfg.Messages.Store(ctx, message.StoreParams{Messages: msgs, Now: now}); err != nil {
		return nil, err
	}
	s.log.Info("campaign test sent", "campaign", c.ID, "messages", len(msgs))
	return results, nil
}
