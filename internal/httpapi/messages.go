package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/postie/postie/internal/apikey"
	"github.com/postie/postie/internal/fanout"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// Accepted is the answer to an accepted message.
type Accepted struct {
	ID     string `json:"id" doc:"Message id" example:"msg_01jd8x2k3m4n5p6q7r8s9t0v1w"`
	Status string `json:"status" doc:"queued, or scheduled when send_at is in the future"`
	// Warnings are about the accepted message, e.g. a template's HTML Gmail would clip.
	Warnings []string `json:"warnings,omitempty" doc:"What the render noticed without refusing the message, e.g. HTML over 100 KB (Gmail clips it)"`
}

// BatchResult is one item of a batch answer: either id and status, or error.
type BatchResult struct {
	ID       string           `json:"id,omitempty"`
	Status   string           `json:"status,omitempty"`
	Warnings []string         `json:"warnings,omitempty" doc:"As for POST /v1/messages"`
	Error    *huma.ErrorModel `json:"error,omitempty" doc:"Why this item was rejected (RFC 9457 problem); nothing was stored for it."`
}

// BatchAnswer is the answer to a batch: one result per message, in order.
type BatchAnswer struct {
	Results []BatchResult `json:"results"`
}

// MessageResource is a message as the API shows it.
type MessageResource struct {
	ID              string                 `json:"id"`
	Status          string                 `json:"status" doc:"scheduled, queued, sending, deferred, sent, failed, partially_failed, suppressed, cancelled, bounced or complained; derived from the recipients' states once none is still to be sent to (docs/api.md)"`
	Stream          string                 `json:"stream"`
	ListID          string                 `json:"list_id,omitempty" doc:"The list a broadcast message was sent for"`
	EventID         string                 `json:"event_id,omitempty" doc:"The event (evt_…) whose trigger created the message"`
	TriggerID       string                 `json:"trigger_id,omitempty" doc:"The trigger (trg_…) that created the message"`
	From            string                 `json:"from"`
	To              []string               `json:"to"`
	Cc              []string               `json:"cc,omitempty"`
	Bcc             []string               `json:"bcc,omitempty"`
	ReplyTo         string                 `json:"reply_to,omitempty"`
	Subject         string                 `json:"subject"`
	Template        string                 `json:"template,omitempty" doc:"The template the message was rendered from"`
	TemplateVersion int                    `json:"template_version,omitempty" doc:"The version of the template used"`
	Locale          string                 `json:"locale,omitempty" doc:"The template's locale variant used; absent for its default content"`
	Headers         map[string]string      `json:"headers,omitempty"`
	Attachments     []store.AttachmentInfo `json:"attachments,omitempty"`
	Tags            []string               `json:"tags"`
	Metadata        map[string]string      `json:"metadata"`
	MessageID       string                 `json:"message_id" doc:"The Message-ID header, without angle brackets"`
	Size            int                    `json:"size" doc:"Octets of the stored MIME"`
	Attempts        int                    `json:"attempts"`
	MaxAttempts     int                    `json:"max_attempts"`
	NextAttemptAt   *time.Time             `json:"next_attempt_at,omitempty" doc:"When the next attempt is due (while scheduled, queued or deferred)"`
	LastError       *store.DeliveryError   `json:"last_error,omitempty"`
	ProviderID      string                 `json:"provider_id,omitempty" doc:"The relay's queue id or the provider's message id"`
	CreatedAt       time.Time              `json:"created_at"`
	SendAt          *time.Time             `json:"send_at,omitempty"`
	SentAt          *time.Time             `json:"sent_at"`
	ExpiresAt       time.Time              `json:"expires_at" doc:"postie gives up on the message at this time"`
	Events          []EventResource        `json:"events,omitempty" doc:"The timeline, oldest first (GET /v1/messages/{id} only)"`
	Recipients      []RecipientResource    `json:"recipients,omitempty" doc:"Each envelope recipient (to, cc, bcc) with its own delivery state, by address (GET /v1/messages/{id} only)"`
}

// RecipientResource is one recipient of a message with its delivery state.
type RecipientResource struct {
	Email     string               `json:"email" doc:"The address, lowercased"`
	Status    string               `json:"status" doc:"queued, deferred, sent, failed, suppressed, cancelled, bounced or complained"`
	Attempts  int                  `json:"attempts" doc:"Attempts made to deliver to this recipient"`
	LastError *store.DeliveryError `json:"last_error,omitempty" doc:"Why its last attempt failed"`
	SentAt    *time.Time           `json:"sent_at" doc:"When the relay accepted it for this recipient"`
}

// EventResource is one timeline entry.
type EventResource struct {
	Type   string             `json:"type" enum:"queued,scheduled,sent,deferred,failed,suppressed,cancelled,retried,lease_expired,released"`
	At     time.Time          `json:"at"`
	Detail *store.EventDetail `json:"detail,omitempty"`
}

func toResource(m store.Message) MessageResource {
	r := MessageResource{
		ID: m.ID, Status: string(m.Status), Stream: m.Stream, From: displayAddress(m.From), To: nonNil(displayAddresses(m.To)),
		Cc: displayAddresses(m.Cc), Bcc: displayAddresses(m.Bcc), ReplyTo: displayAddress(m.ReplyTo), Subject: m.Subject, Template: m.Template, TemplateVersion: m.TemplateVersion,
		Locale: m.Locale, Headers: m.Headers, ListID: m.ListID, EventID: m.EventID, TriggerID: m.TriggerID,
		Attachments: m.Attachments, Tags: nonNil(m.Tags), Metadata: m.Metadata, MessageID: m.MessageID,
		Size: m.Size, Attempts: m.Attempts, MaxAttempts: m.MaxAttempts, LastError: m.LastError,
		ProviderID: m.ProviderID, CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt,
	}
	if r.Metadata == nil {
		r.Metadata = map[string]string{}
	}
	switch m.Status {
	case store.StatusScheduled, store.StatusQueued, store.StatusDeferred:
		r.NextAttemptAt = timePtr(m.NextAttemptAt)
	}
	r.SendAt = timePtr(m.SendAt)
	r.SentAt = timePtr(m.SentAt)
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// sendInput reads the body raw and decodes it strictly (decodeItem), exactly as a batch item:
// one JSON parse, unknown fields refused, the same errors for both endpoints.
type sendInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"Makes retries safe: a repeat with the same key and body returns the original response; with another body, 409. Kept 24 hours, per API key."`
	RawBody        []byte `contentType:"application/json"`
}

type sendOutput struct {
	Status int
	Body   json.RawMessage
}

// batchInput reads the body raw: items are decoded one by one so a bad item fails alone.
type batchInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"As for POST /v1/messages; covers the whole batch."`
	RawBody        []byte `contentType:"application/json"`
}

// BatchBody documents the batch request body.
type BatchBody struct {
	Messages []SendMessage `json:"messages" doc:"The messages, each exactly as for POST /v1/messages. At most 500." minItems:"1" maxItems:"500"`
}

type idInput struct {
	ID string `path:"id" doc:"Message id"`
}

type messageOutput struct {
	Body MessageResource
}

type listInput struct {
	Status        []string  `query:"status" doc:"Only these statuses (repeat or comma-separate); with recipient, a message also matches when that recipient's own state is one of them"`
	Stream        string    `query:"stream" enum:"transactional,broadcast," doc:"Only this stream"`
	Tag           string    `query:"tag" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Only messages with this tag"`
	Recipient     string    `query:"recipient" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Only messages to this address (to, cc or bcc; case-insensitive)"`
	CampaignID    string    `query:"campaign_id" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Only messages of this campaign"`
	CreatedAfter  time.Time `query:"created_after" doc:"Created at or after this time (RFC 3339)"`
	CreatedBefore time.Time `query:"created_before" doc:"Created before this time (RFC 3339)"`
	ErrorCode     string    `query:"error_code" pattern:"^([2-5][0-9]{2}|[2-5][.][0-9]{1,3}[.][0-9]{1,3}|[2-5][.]([0-9]{1,3}[.])?)$" patternDescription:"a reply code like 550, an enhanced code like 5.1.1, or a prefix like 5.1." doc:"Only messages whose last error has this reply code (550), enhanced code (5.1.1) or enhanced-code prefix ending in a dot (5.1.)"`
	Cursor        string    `query:"cursor" doc:"next_cursor of the previous page"`
	Limit         int       `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

// RetryFilter is the body of POST /v1/messages/retry. Every field narrows the selection; an empty
// filter retries every failed message.
type RetryFilter struct {
	Stream        string     `json:"stream,omitempty" enum:"transactional,broadcast" doc:"Only this stream"`
	Tag           string     `json:"tag,omitempty" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Only messages with this tag"`
	Recipient     string     `json:"recipient,omitempty" pattern:"^[^\\x00]*$" patternDescription:"free of U+0000 (NUL)" doc:"Only messages where this recipient failed (to, cc or bcc; case-insensitive)"`
	CreatedAfter  *time.Time `json:"created_after,omitempty" doc:"Created at or after this time (RFC 3339)"`
	CreatedBefore *time.Time `json:"created_before,omitempty" doc:"Created before this time (RFC 3339)"`
	ErrorCode     string     `json:"error_code,omitempty" pattern:"^([2-5][0-9]{2}|[2-5][.][0-9]{1,3}[.][0-9]{1,3}|[2-5][.]([0-9]{1,3}[.])?)$" patternDescription:"a reply code like 550, an enhanced code like 5.1.1, or a prefix like 5.1." doc:"Only messages whose last error has this reply code (550), enhanced code (5.1.1) or enhanced-code prefix ending in a dot (5.1.)"`

	strict strictBody // what checkJSON found
}

type retryInput struct {
	Body *RetryFilter
}

// maxRetryIDs bounds the ids listed in a bulk retry's answer.
const maxRetryIDs = 1000

type retryOutput struct {
	Body struct {
		Retried int      `json:"retried" doc:"How many failed messages were queued again"`
		IDs     []string `json:"ids" doc:"Their ids (at most 1000)"`
	}
}

// pageOutput is one page of a listing: {data, next_cursor}.
type pageOutput[T any] struct {
	Body struct {
		Data       []T    `json:"data"`
		NextCursor string `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page"`
	}
}

func (s *Server) registerMessages() {
	tags := []string{"Messages"}
	// The two sending routes' body limits are applied, and their bodies read, by serveLarge
	// (inflight.go): huma's MaxBodyBytes is off for them.
	huma.Register(s.api, huma.Operation{
		OperationID: "send-message", Method: http.MethodPost, Path: "/v1/messages", Tags: tags,
		Summary:       "Send a message",
		Description:   "Validates, renders and stores the message durably, then answers 202. Delivery happens in the background.",
		DefaultStatus: http.StatusAccepted, MaxBodyBytes: -1, BodyReadTimeout: sendReadTimeout,
		Errors: []int{400, 401, 409, 413, 422}, SkipValidateBody: true,
	}, s.send)
	huma.Register(s.api, huma.Operation{
		OperationID: "send-batch", Method: http.MethodPost, Path: "/v1/messages/batch", Tags: tags,
		Summary:      "Send up to 500 messages",
		Description:  "Each item is validated on its own: valid items are stored (all in one transaction) and bad ones are answered with their error, in order.",
		MaxBodyBytes: -1, BodyReadTimeout: batchReadTimeout, SkipValidateBody: true,
		Errors: []int{400, 401, 409, 413, 422},
	}, s.sendBatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-messages", Method: http.MethodGet, Path: "/v1/messages", Tags: tags,
		Summary: "List messages, newest first", Errors: []int{401, 422},
	}, s.list)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-message", Method: http.MethodGet, Path: "/v1/messages/{id}", Tags: tags,
		Summary: "Get a message with its timeline", Errors: []int{401, 404},
	}, s.get)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-message-raw", Method: http.MethodGet, Path: "/v1/messages/{id}/raw", Tags: tags,
		Summary:     "The message's MIME exactly as it is sent (message/rfc822)",
		Description: "410 Gone once retention purged the body (POSTIE_RETAIN_BODIES after the message finished); the message's metadata and timeline stay readable.",
		Errors:      []int{401, 404, 410},
		Responses:   map[string]*huma.Response{"200": {Description: "The MIME", Content: map[string]*huma.MediaType{"message/rfc822": {}}}},
	}, s.raw)
	huma.Register(s.api, huma.Operation{
		OperationID: "cancel-message", Method: http.MethodPost, Path: "/v1/messages/{id}/cancel", Tags: tags,
		Summary:     "Cancel a scheduled, queued or deferred message",
		Description: "Cancels the recipients still to be sent to; those already sent to stay sent, and the message's status is derived from its recipients'.",
		Errors:      []int{401, 404, 409},
	}, s.cancel)
	huma.Register(s.api, huma.Operation{
		OperationID: "retry-message", Method: http.MethodPost, Path: "/v1/messages/{id}/retry", Tags: tags,
		Summary:     "Retry a failed or partially failed message",
		Description: "Queues a failed or partially_failed message again for its failed recipients only (never those already sent to), with fresh attempts and a new expiry (now + the message TTL), keeping its last error for the record, and returns it. 410 Gone when retention purged the message's body (POSTIE_RETAIN_BODIES): it cannot be sent again.",
		Errors:      []int{401, 404, 409, 410},
	}, s.retryOne)
	huma.Register(s.api, huma.Operation{
		OperationID: "retry-messages", Method: http.MethodPost, Path: "/v1/messages/retry", Tags: tags,
		Summary:     "Retry every failed message matching a filter",
		Description: "Queues again, with fresh attempts and a new expiry, the failed recipients of every failed or partially_failed message the filter selects (with recipient: the messages where that recipient failed); an empty or absent body selects every such message (what is wanted after a relay outage).",
		Errors:      []int{400, 401, 422},
	}, s.retryMany)
}

func (s *Server) send(ctx context.Context, in *sendInput) (*sendOutput, error) {
	now := s.cfg.Now().UTC()
	key := apiKeyFrom(ctx)
	sm, err := decodeItem(in.RawBody, "body")
	if err != nil {
		return nil, err
	}
	taken, err := s.reserve(key, 1)
	if err != nil {
		return nil, err
	}
	req := sm.request()
	c, err := s.messages.Compose(ctx, &req, message.ComposeParams{Now: now, APIKeyID: key.ID, SenderDomains: key.SenderDomains})
	if err != nil {
		taken.Cancel()
		return nil, s.messageError(err, "body")
	}
	body, _ := json.Marshal(Accepted{ID: c.Message.ID, Status: string(c.Message.Status), Warnings: c.Warnings})
	res, err := s.messages.Store(ctx, message.StoreParams{Messages: []store.NewMessage{c.NewMessage}, APIKeyID: key.ID, Now: now,
		Idempotency: message.Idempotency{Key: in.IdempotencyKey, Scope: "/v1/messages", Request: in.RawBody},
		Status:      http.StatusAccepted, Body: body})
	if err != nil {
		taken.Cancel()
		return nil, s.messageError(err, "body")
	}
	if res.Replayed {
		taken.Cancel()
		return &sendOutput{Status: res.StatusCode, Body: res.Response}, nil
	}
	return &sendOutput{Status: http.StatusAccepted, Body: body}, nil
}

func (s *Server) sendBatch(ctx context.Context, in *batchInput) (*sendOutput, error) {
	now := s.cfg.Now().UTC()
	key := apiKeyFrom(ctx)
	items, fast := splitBatch(in.RawBody)
	if !fast {
		var err error
		if items, err = decodeBatch(in.RawBody); err != nil {
			return nil, err
		}
	}
	switch {
	case items == nil:
		return nil, huma.Error422UnprocessableEntity("body.messages: required",
			&huma.ErrorDetail{Location: "body.messages", Message: "required: an array of messages"})
	case len(items) == 0:
		return nil, huma.Error422UnprocessableEntity("body.messages: empty",
			&huma.ErrorDetail{Location: "body.messages", Message: "at least one message is required"})
	case len(items) > s.cfg.MaxBatch:
		return nil, huma.Error422UnprocessableEntity(fmt.Sprintf("body.messages: at most %d messages per batch", s.cfg.MaxBatch),
			&huma.ErrorDetail{Location: "body.messages", Message: fmt.Sprintf("too many messages: %d, at most %d", len(items), s.cfg.MaxBatch), Value: len(items)})
	}
	// The rate limit counts every item: a batch of 100 costs 100 (given back when nothing is
	// stored).
	taken, err := s.reserve(key, len(items))
	if err != nil {
		return nil, err
	}
	kept := false
	defer func() {
		if !kept {
			taken.Cancel()
		}
	}()
	// Every item is decoded before any is composed: a malformed item refuses the whole request,
	// which must not cost the rendering and MIME building of the others. Decoding is the cheap
	// part; both steps run on every core, so a batch's latency is not one core's worth of work.
	// decoded are the decoded items (nil for one refused), prefixes where each item's errors are;
	// malformed is set when an item split by splitBatch is not valid JSON.
	results := make([]BatchResult, len(items))
	decoded := make([]*SendMessage, len(items))
	prefixes := make([]string, len(items))
	var malformed atomic.Bool
	panics := fanout.Try(len(items), func(i int) error {
		prefixes[i] = fmt.Sprintf("body.messages[%d]", i)
		req, err := decodeItem(items[i], prefixes[i])
		if err != nil {
			if fast && asErrorModel(err).Status == http.StatusBadRequest {
				malformed.Store(true)
			}
			results[i] = BatchResult{Error: asErrorModel(err)}
			return nil
		}
		decoded[i] = req
		return nil
	})
	for i, err := range panics {
		if err != nil { // a panic decoding this item fails it alone
			decoded[i] = nil
			results[i] = BatchResult{Error: asErrorModel(s.messageError(err, prefixes[i]))}
		}
	}
	if malformed.Load() {
		// The body is not valid JSON: answer as encoding/json would have from the start. (An
		// item refused with a 400 in a valid body refuses that item alone.)
		if _, err := decodeBatch(in.RawBody); err != nil {
			return nil, err
		}
	}
	// The decoded items go to the service; at[j] is the item of its j-th request.
	reqs := make([]message.Request, 0, len(items))
	at := make([]int, 0, len(items))
	for i, d := range decoded {
		if d != nil {
			reqs = append(reqs, d.request())
			at = append(at, i)
			decoded[i] = nil
		}
	}
	acc, err := s.messages.Accept(ctx, message.AcceptParams{
		Requests: reqs, APIKeyID: key.ID, SenderDomains: key.SenderDomains, Now: now, Budget: s.cfg.BatchRenderBudget,
		Idempotency: message.Idempotency{Key: in.IdempotencyKey, Scope: "/v1/messages/batch", Request: in.RawBody},
		Answer: func(rs []message.Result) (int, []byte) {
			for j, r := range rs {
				i := at[j]
				if r.Err != nil {
					results[i] = BatchResult{Error: asErrorModel(s.messageError(r.Err, prefixes[i]))}
					continue
				}
				results[i] = BatchResult{ID: r.ID, Status: string(r.Status), Warnings: r.Warnings}
			}
			answer, _ := json.Marshal(BatchAnswer{results})
			return http.StatusOK, answer
		},
	})
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	kept = !acc.Replayed
	return &sendOutput{Status: acc.Status, Body: acc.Body}, nil
}

// reserve takes n messages from key's rate limit: a 429 with Retry-After when they are not
// there, a 422 at body.messages when n is more than the key may ever send at once.
func (s *Server) reserve(key store.APIKey, n int) (apikey.Reservation, error) {
	r, err := s.keys.Reserve(key, n)
	var re *apikey.RateError
	if !errors.As(err, &re) {
		return r, err
	}
	if re.Wait == 0 {
		return r, huma.Error422UnprocessableEntity("body.messages: "+re.Error(),
			&huma.ErrorDetail{Location: "body.messages", Message: re.Error(), Value: n})
	}
	return r, huma.ErrorWithHeaders(huma.NewError(http.StatusTooManyRequests, re.Error()),
		http.Header{"Retry-After": {strconv.Itoa(re.RetryAfter())}})
}

// decodeBatch decodes a batch body with encoding/json: the slow path of splitBatch, and the one
// that words the errors.
func decodeBatch(raw []byte) ([]json.RawMessage, error) {
	var body struct {
		Messages []json.RawMessage `json:"messages"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, huma.Error422UnprocessableEntity("body.messages: must be an array of message objects",
				&huma.ErrorDetail{Location: "body.messages", Message: "must be an array of message objects"})
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return nil, huma.Error422UnprocessableEntity("body: "+err.Error(),
				&huma.ErrorDetail{Location: "body", Message: "the only field is messages"})
		}
		return nil, huma.Error400BadRequest("malformed JSON: "+err.Error(),
			&huma.ErrorDetail{Location: "body", Message: "malformed JSON: " + err.Error()})
	}
	if is := checkJSON(raw, batchShape); is != nil {
		return nil, jsonProblem(is, "body")
	}
	return body.Messages, nil
}

// asErrorModel is err as the error model of a batch item.
func asErrorModel(err error) *huma.ErrorModel {
	if em, ok := err.(*huma.ErrorModel); ok {
		return capProblem(em)
	}
	return &huma.ErrorModel{Status: http.StatusUnprocessableEntity, Title: "Unprocessable Entity", Detail: err.Error()}
}

func (s *Server) retryOne(ctx context.Context, in *idInput) (*messageOutput, error) {
	now := s.cfg.Now().UTC()
	if len(apiKeyFrom(ctx).SenderDomains) > 0 {
		if m, err := s.cfg.Store.MessageGet(ctx, in.ID); err == nil { // else the retry says why
			if err := s.fromAllowed(ctx, "message", m.From); err != nil {
				return nil, err
			}
		}
	}
	_, err := s.cfg.Store.MessageRetry(ctx, store.MessageRetryParams{ID: in.ID, Now: now, ExpiresAt: now.Add(s.cfg.MessageTTL)})
	if err != nil {
		return nil, s.storeError(err, "message "+in.ID)
	}
	return s.get(ctx, in)
}

func (s *Server) retryMany(ctx context.Context, in *retryInput) (*retryOutput, error) {
	now := s.cfg.Now().UTC()
	if d := apiKeyFrom(ctx).SenderDomains; len(d) > 0 {
		// The filter cannot say From domains: such a key retries messages one at a time.
		return nil, huma.Error403Forbidden("this API key may send only from " + strings.Join(d, ", ") +
			": it retries messages one at a time (POST /v1/messages/{id}/retry)")
	}
	var f store.MessageListParams
	if b := in.Body; b != nil {
		f = store.MessageListParams{Stream: b.Stream, Tag: b.Tag, Recipient: strings.TrimSpace(b.Recipient), ErrorCode: b.ErrorCode}
		if b.CreatedAfter != nil {
			f.CreatedAfter = *b.CreatedAfter
		}
		if b.CreatedBefore != nil {
			f.CreatedBefore = *b.CreatedBefore
		}
	}
	ids, err := s.cfg.Store.MessageRetry(ctx, store.MessageRetryParams{Filter: f, Now: now, ExpiresAt: now.Add(s.cfg.MessageTTL)})
	if err != nil {
		return nil, s.storeError(err, "messages")
	}
	out := &retryOutput{}
	out.Body.Retried = len(ids)
	out.Body.IDs = nonNil(ids[:min(len(ids), maxRetryIDs)])
	return out, nil
}

func (s *Server) get(ctx context.Context, in *idInput) (*messageOutput, error) {
	m, err := s.cfg.Store.MessageGet(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "message "+in.ID)
	}
	evs, err := s.cfg.Store.MessageEvents(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "message "+in.ID)
	}
	rcpts, err := s.cfg.Store.MessageRecipients(ctx, in.ID)
	if err != nil {
		return nil, s.storeError(err, "message "+in.ID)
	}
	r := toResource(m)
	r.Events = make([]EventResource, len(evs))
	for i, e := range evs {
		// A detail no version wrote (not a JSON object) is left out rather than failing the read.
		d, _ := e.DecodeDetail()
		r.Events[i] = EventResource{Type: e.Type, At: e.At, Detail: d}
	}
	r.Recipients = make([]RecipientResource, len(rcpts))
	for i, rc := range rcpts {
		r.Recipients[i] = RecipientResource{Email: rc.Email, Status: string(rc.Status), Attempts: rc.Attempts,
			LastError: rc.LastError, SentAt: timePtr(rc.SentAt)}
	}
	return &messageOutput{Body: r}, nil
}

// rawPart is how much of a MIME /raw reads from the store and holds at a time.
const rawPart = 1 << 20

// raw streams a message's MIME from the store a part at a time, so that a client reading slowly
// holds one part, not the whole message, and is disconnected when it has not taken the body
// within the write timeout.
func (s *Server) raw(ctx context.Context, in *idInput) (*huma.StreamResponse, error) {
	first, size, err := s.cfg.Store.MessageRawPart(ctx, in.ID, 0, rawPart)
	if err != nil {
		return nil, s.storeError(err, "message "+in.ID)
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		_, w := humago.Unwrap(hctx)
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		hctx.SetHeader("Content-Type", "message/rfc822")
		hctx.SetHeader("Content-Length", strconv.FormatInt(size, 10))
		hctx.SetStatus(http.StatusOK)
		part := first
		for off := int64(0); ; {
			if _, err := w.Write(part); err != nil {
				return // the client went away, or did not read within the deadline
			}
			off += int64(len(part))
			if off >= size || len(part) == 0 {
				return
			}
			part = nil // not held while the next is read
			if part, _, err = s.cfg.Store.MessageRawPart(ctx, in.ID, off, rawPart); err != nil {
				// The status is sent: cutting the response short is the only way to say it.
				s.log.Warn("reading a message's MIME failed midway", "id", in.ID, "offset", off, "err", err)
				panic(http.ErrAbortHandler)
			}
		}
	}}, nil
}

func (s *Server) cancel(ctx context.Context, in *idInput) (*messageOutput, error) {
	m, err := s.cfg.Store.MessageCancel(ctx, in.ID, s.cfg.Now().UTC())
	if err != nil {
		return nil, s.storeError(err, "message "+in.ID)
	}
	return &messageOutput{Body: toResource(m)}, nil
}

func (s *Server) list(ctx context.Context, in *listInput) (*pageOutput[MessageResource], error) {
	p := store.MessageListParams{
		Stream: in.Stream, Tag: in.Tag, Recipient: strings.TrimSpace(in.Recipient), CampaignID: in.CampaignID,
		CreatedAfter: in.CreatedAfter, CreatedBefore: in.CreatedBefore, ErrorCode: in.ErrorCode, Cursor: in.Cursor,
		Limit: in.Limit + 1,
	}
	for _, v := range in.Status {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if st == "" {
				continue
			}
			if !store.Status(st).Valid() {
				return nil, huma.Error422UnprocessableEntity("query.status: unknown status "+st,
					&huma.ErrorDetail{Location: "query.status", Message: "unknown status", Value: st})
			}
			p.Statuses = append(p.Statuses, store.Status(st))
		}
	}
	ms, err := s.cfg.Store.MessageList(ctx, p)
	if err != nil {
		return nil, s.storeError(err, "messages")
	}
	out := &pageOutput[MessageResource]{}
	if len(ms) > in.Limit {
		ms = ms[:in.Limit]
		out.Body.NextCursor = ms[len(ms)-1].ID
	}
	out.Body.Data = make([]MessageResource, len(ms))
	for i, m := range ms {
		out.Body.Data[i] = toResource(m)
	}
	return out, nil
}
