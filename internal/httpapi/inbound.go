package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/store"
)

// InboundResource is one piece of inbound mail or one notification as postie received it.
type InboundResource struct {
	ID         int64     `json:"id" doc:"The entry's number, increasing"`
	At         time.Time `json:"at" doc:"When it was received"`
	Channel    string    `json:"channel" enum:"smtp,ses" doc:"How it came: the inbound SMTP listener, or an SES notification over SNS"`
	MailFrom   string    `json:"mail_from" doc:"The envelope sender; empty for the null sender of a DSN" example:""`
	RcptTo     string    `json:"rcpt_to" doc:"The envelope recipient (a bounce address), or the SNS topic" example:"b-01jd8x…@bounce.shop.example"`
	Kind       string    `json:"kind" enum:"dsn,arf,text,auto_reply,ses,subscription,unparseable,forged" doc:"What it was: a DSN, an ARF feedback report, a bounce recognised by its text, an automatic reply, an SES notification, an SNS subscription confirmation or end, something unreadable, a forged bounce address"`
	Outcome    string    `json:"outcome" enum:"applied,duplicate,unmatched,ignored" doc:"What became of it: applied (it changed a recipient's state or timeline), duplicate (received before), unmatched (names nothing postie sent, or a bounce address that does not verify), ignored (unparseable or nothing to act on)"`
	Detail     string    `json:"detail" doc:"What it said or why it was not applied" example:"bounce ann@example.com (msg_01jd8x… 5.1.1 hard)"`
	MessageIDs []string  `json:"message_ids" doc:"The messages it reported on"`
	Size       int       `json:"size" doc:"Octets received"`
}

type inboundListInput struct {
	Kind    string `query:"kind" enum:"dsn,arf,text,auto_reply,ses,subscription,unparseable,forged," doc:"Only this kind"`
	Outcome string `query:"outcome" enum:"applied,duplicate,unmatched,ignored," doc:"Only this outcome"`
	Cursor  string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit   int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

func (s *Server) registerInbound() {
	huma.Register(s.api, huma.Operation{
		OperationID: "list-inbound", Method: http.MethodGet, Path: "/v1/inbound", Tags: []string{"Inbound"},
		Summary: "List inbound mail and notifications, newest first",
		Description: "Every bounce, feedback report, automatic reply or SES notification received, with what became of it: " +
			"forged and unparseable ones included, so an operator can see what came in and why it changed nothing.",
		Errors: []int{401, 422},
	}, s.inboundList)
}

func (s *Server) inboundList(ctx context.Context, in *inboundListInput) (*pageOutput[InboundResource], error) {
	if _, err := store.InboundCursorAfter(in.Cursor); err != nil {
		return nil, s.storeError(store.ErrBadCursor, "inbound entries")
	}
	page, next, err := s.cfg.Store.InboundList(ctx, store.InboundListParams{Kind: in.Kind, Outcome: in.Outcome, Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.storeError(err, "inbound entries")
	}
	out := &pageOutput[InboundResource]{}
	out.Body.NextCursor = next
	out.Body.Data = make([]InboundResource, len(page))
	for i, e := range page {
		ids := e.MessageIDs
		if ids == nil {
			ids = []string{}
		}
		out.Body.Data[i] = InboundResource{ID: e.ID, At: e.At, Channel: e.Channel, MailFrom: e.MailFrom, RcptTo: e.RcptTo,
			Kind: e.Kind, Outcome: e.Outcome, Detail: e.Detail, MessageIDs: ids, Size: e.Size}
	}
	return out, nil
}
