package httpapi

import (
	"context"
	"errors"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/inbound"
)

// sesPath receives Amazon SES notifications from SNS. SNS cannot send an API key: the request is
// authenticated by the SNS signature and the topic allow-list instead.
const sesPath = "/v1/inbound/ses"

type sesInput struct {
	RawBody []byte `contentType:"application/json"` // SNS sends it as text/plain
}

// SNSMessage documents the body SNS posts (the AWS SNS Developer Guide's HTTP/S message
// formats); inbound.SES reads it.
type SNSMessage struct {
	Type             string `json:"Type" enum:"Notification,SubscriptionConfirmation,UnsubscribeConfirmation"`
	MessageID        string `json:"MessageId"`
	Token            string `json:"Token,omitempty" doc:"Subscription confirmations only"`
	TopicArn         string `json:"TopicArn" doc:"Must be listed in POSTIE_SES_TOPIC_ARNS" example:"arn:aws:sns:eu-west-1:123456789012:ses-feedback"`
	Subject          string `json:"Subject,omitempty"`
	Message          string `json:"Message" doc:"A notification's SES event, as a JSON string"`
	SubscribeURL     string `json:"SubscribeURL,omitempty" doc:"Subscription confirmations only: fetched to confirm, from the topic region's SNS host only"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion" enum:"1,2"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL" doc:"https://sns.{region}.amazonaws.com/…, the region of TopicArn"`
	UnsubscribeURL   string `json:"UnsubscribeURL,omitempty"`
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

// documentSES describes the request body by SNSMessage, as application/json and as the
// text/plain SNS sends.
func (s *Server) documentSES() {
	oapi := s.api.OpenAPI()
	op := oapi.Paths[sesPath].Post
	mt := &huma.MediaType{Schema: oapi.Components.Schemas.Schema(reflect.TypeFor[SNSMessage](), true, "SNSMessage")}
	op.RequestBody.Content = map[string]*huma.MediaType{"application/json": mt, "text/plain": mt}
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
	case errors.Is(err, inbound.ErrSESBusy):
		return nil, huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(err.Error()), http.Header{"Retry-After": {"1"}})
	}
	// A store failure or an unconfirmed subscription: SNS retries a 5xx.
	s.log.Warn("SES notification not recorded", "err", err)
	return nil, huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("could not record the notification; retry shortly"),
		http.Header{"Retry-After": {"2"}})
}
