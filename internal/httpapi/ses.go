package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/inbound"
)

// sesPath receives Amazon SES notifications from SNS. SNS cannot send an API key: the request is
// authenticated by the SNS signature and the topic allow-list instead.
const sesPath = "/v1/inbound/ses"

type sesInput struct {
	RawBody []byte `contentType:"text/plain"`
}

// SESReceipt is what POST /v1/inbound/ses answers: what became of the notification.
type SESReceipt struct {
	Kind    string `json:"kind" doc:"What it was: ses (a notification), subscription, unparseable, forged" example:"ses"`
	Outcome string `json:"outcome" enum:"applied,duplicate,unmatched,ignored" doc:"applied: it changed a recipient; duplicate: applied before; unmatched: it names no mail postie sent; ignored: nothing to act on"`
	Detail  string `json:"detail" doc:"What it said, and why a report was not applied" example:"bounce ann@example.com (msg_01hx… 5.1.1 hard)"`
}

type sesOutput struct {
	Body SESReceipt
}

func (s *Server) registerSES() {
	huma.Register(s.api, huma.Operation{
		OperationID: "receive-ses-notification", Method: http.MethodPost, Path: sesPath, Tags: []string{"Inbound"},
		Summary: "Receive an Amazon SES notification (from SNS)",
		Description: "The HTTPS subscription endpoint of the SNS topics that SES publishes bounce, complaint and " +
			"delivery notifications to. It takes no API key: the topic must be listed in POSTIE_SES_TOPIC_ARNS " +
			"(checked first: 403 otherwise) and the SNS signature must verify with a certificate from " +
			"https://sns.{region}.amazonaws.com (403 otherwise). A SubscriptionConfirmation is confirmed by " +
			"fetching its SubscribeURL from that same host. A bounce, complaint or delivery about mail postie " +
			"sent updates the recipient as a DSN or ARF report to the bounce domain does.",
		Security: []map[string][]string{}, MaxBodyBytes: inbound.MaxSESBody, SkipValidateBody: true,
		Errors: []int{400, 403, 413, 503},
	}, s.sesReceive)
}

func (s *Server) sesReceive(ctx context.Context, in *sesInput) (*sesOutput, error) {
	if s.cfg.SES == nil {
		return nil, huma.Error403Forbidden("SES notifications are not received here: POSTIE_SES_TOPIC_ARNS is empty")
	}
	e, err := s.cfg.SES.Receive(ctx, in.RawBody)
	switch {
	case err == nil:
		return &sesOutput{Body: SESReceipt{Kind: e.Kind, Outcome: e.Outcome, Detail: e.Detail}}, nil
	case errors.Is(err, inbound.ErrSNSMalformed):
		return nil, huma.Error400BadRequest("body: " + err.Error())
	case errors.Is(err, inbound.ErrSNSTopic), errors.Is(err, inbound.ErrSNSSignature), errors.Is(err, inbound.ErrSNSSubscribeURL):
		return nil, huma.Error403Forbidden(err.Error())
	}
	// A store failure or an unconfirmed subscription: SNS retries a 5xx.
	s.log.Warn("SES notification not recorded", "err", err)
	return nil, huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("could not record the notification; retry shortly"),
		http.Header{"Retry-After": {"2"}})
}
