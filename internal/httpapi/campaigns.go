package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/campaign"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/reputation"
	"github.com/postie/postie/internal/store"
)

// The campaigns routes: thin handlers over package campaign (docs/api.md, Campaigns).

// CampaignAudience is who a campaign's runs target.
type CampaignAudience struct {
	Lists   []string `json:"lists" doc:"List ids (lst_…): contacts subscribed to any of them, each once" example:"[\"lst_01jd8x3k2m4n5p6q7r8s9t0v1w\"]"`
	Segment string   `json:"segment" doc:"A segment id (seg_…), \"\" for none: with lists, only the contacts on a list and in the segment" example:"seg_01jd8x0000000000000000000"`
}

// AudienceBody is the audience of a campaign body: given, it replaces the whole audience.
type AudienceBody struct {
	Lists   []string `json:"lists,omitempty" doc:"List ids (lst_…): contacts subscribed to any of them, each once; a contact on several gets one message"`
	Segment string   `json:"segment,omitempty" doc:"A segment id (seg_…): alone, the contacts it matches when a run starts; with lists, only those on a list and in the segment"`
}

// CampaignSchedule is when a campaign runs.
type CampaignSchedule struct {
	Kind     string     `json:"kind" enum:"now,at,cron" doc:"now: one run as soon as it is started; at: one run at the time at; cron: a run at each occurrence of cron in timezone"`
	At       *time.Time `json:"at,omitempty" doc:"kind at: when the run starts; not more than a minute in the past when saved, changed or started" example:"2026-12-07T09:00:00Z"`
	Cron     string     `json:"cron,omitempty" maxLength:"200" doc:"kind cron: five fields (minute hour day-of-month month day-of-week), or a macro such as @daily" example:"0 9 * * 1"`
	Timezone string     `json:"timezone,omitempty" doc:"kind cron: the IANA time zone the cron expression is read in; \"\" is UTC" example:"Asia/Seoul"`
}

// CampaignCap limits how often one contact gets a campaign across its runs.
type CampaignCap struct {
	Kind string `json:"kind" enum:"once_per_contact,days,none" doc:"once_per_contact: a contact gets this campaign once, ever; days: at most once per days days; none (in a body only): remove the cap"`
	Days int    `json:"days,omitempty" minimum:"1" doc:"kind days: the number of days"`
}

// CampaignResource is a campaign as the API shows it.
type CampaignResource struct {
	ID              string           `json:"id" example:"cmp_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Name            string           `json:"name" example:"May news"`
	Template        string           `json:"template" doc:"The template's name" example:"newsletter"`
	TemplateVersion int              `json:"template_version" doc:"The template version every run uses; 0: the latest when a run starts (the run records the version it used)"`
	Audience        CampaignAudience `json:"audience"`
	From            string           `json:"from" doc:"The sender; \"\" for the server's default (POSTIE_FROM)"`
	ReplyTo         string           `json:"reply_to" doc:"\"\" for none"`
	Subject         string           `json:"subject" doc:"Replaces the template's subject; \"\" for the template's"`
	Data            json.RawMessage  `json:"data" doc:"A JSON object every recipient's message is rendered with as .data; null for none"`
	Tags            []string         `json:"tags" doc:"Tags of every message of the campaign"`
	Rate            float64          `json:"rate" doc:"At most this many messages per second; 0: no limit of its own (the transport's still hold)"`
	Schedule        CampaignSchedule `json:"schedule"`
	FrequencyCap    *CampaignCap     `json:"frequency_cap,omitempty" doc:"Absent: every run targets every contact of its audience"`
	ResumeNextDay   bool             `json:"resume_next_day" doc:"A pause for the daily quota ends by itself on the next UTC day"`
	State           string           `json:"state" enum:"draft,scheduled,running,paused,finished,cancelled" doc:"See the state machine in docs/api.md"`
	PauseReasons    []string         `json:"pause_reasons" doc:"While paused, why: manual, daily_quota, complaint_rate"`
	NextRunAt       *time.Time       `json:"next_run_at" doc:"The next occurrence to run; null when none"`
	LastRunAt       *time.Time       `json:"last_run_at" doc:"The scheduled time of the latest run; null before the first"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
}

func toCampaignResource(c store.Campaign) CampaignResource {
	r := CampaignResource{ID: c.ID, Name: c.Name, Template: c.Template, TemplateVersion: c.TemplateVersion,
		Audience: CampaignAudience{Lists: nonNil(c.Lists), Segment: c.Segment}, From: c.From, ReplyTo: c.ReplyTo,
		Subject: c.Subject, Data: c.Data, Tags: nonNil(c.Tags), Rate: c.Rate,
		Schedule:      CampaignSchedule{Kind: c.Schedule.Kind, At: timePtr(c.Schedule.At), Cron: c.Schedule.Cron, Timezone: c.Schedule.Timezone},
		ResumeNextDay: c.ResumeNextDay, State: c.State, PauseReasons: nonNil(c.PauseReasons),
		NextRunAt: timePtr(c.NextRunAt), LastRunAt: timePtr(c.LastRunAt), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if len(r.Data) == 0 {
		r.Data = json.RawMessage("null")
	}
	if c.Cap.Kind != store.CapNone {
		r.FrequencyCap = &CampaignCap{Kind: c.Cap.Kind, Days: c.Cap.Days}
	}
	return r
}

// CampaignBody creates a campaign (name, template and audience required) or changes one (the
// members given replace; the others are kept).
type CampaignBody struct {
	Name            *string           `json:"name,omitempty" maxLength:"200" doc:"Required when creating" example:"May news"`
	Template        *string           `json:"template,omitempty" doc:"Required when creating: a template's name" example:"newsletter"`
	TemplateVersion *int              `json:"template_version,omitempty" minimum:"0" doc:"Pin a version of the template; 0 (default): the latest when each run starts"`
	Audience        *AudienceBody     `json:"audience,omitempty" doc:"Required when creating: lists and/or a segment; given, it replaces the whole audience"`
	From            *string           `json:"from,omitempty" doc:"The sender, e.g. \"Shop <news@shop.example>\"; \"\" for the server's default"`
	ReplyTo         *string           `json:"reply_to,omitempty" doc:"A Reply-To address; \"\" for none"`
	Subject         *string           `json:"subject,omitempty" doc:"Replaces the template's subject; \"\" for the template's"`
	Data            json.RawMessage   `json:"data,omitempty" doc:"A JSON object every message is rendered with as .data, validated against the template's schema when saved and when a run starts; null removes it"`
	Tags            *[]string         `json:"tags,omitempty" doc:"Tags of every message of the campaign"`
	Rate            *float64          `json:"rate,omitempty" minimum:"0" doc:"At most this many messages per second; 0 (default): no limit of its own"`
	Schedule        *CampaignSchedule `json:"schedule,omitempty" doc:"When it runs (default: now, once started); given, it replaces the whole schedule"`
	FrequencyCap    *CampaignCap      `json:"frequency_cap,omitempty" doc:"Limit how often one contact gets the campaign; {\"kind\": \"none\"} removes the cap"`
	ResumeNextDay   *bool             `json:"resume_next_day,omitempty" doc:"A pause for the daily quota ends by itself on the next UTC day (default false)"`

	strict strictBody // what checkJSON found
}

// input is b as the campaign service takes it.
func (b *CampaignBody) input() campaign.Input {
	in := campaign.Input{Name: b.Name, Template: b.Template, TemplateVersion: b.TemplateVersion, From: b.From,
		ReplyTo: b.ReplyTo, Subject: b.Subject, Data: b.Data, Tags: b.Tags, Rate: b.Rate, ResumeNextDay: b.ResumeNextDay}
	if a := b.Audience; a != nil {
		lists := a.Lists
		if lists == nil {
			lists = []string{}
		}
		in.Lists, in.Segment = &lists, &a.Segment
	}
	if sc := b.Schedule; sc != nil {
		in.Schedule = &store.Schedule{Kind: sc.Kind, Cron: sc.Cron, Timezone: sc.Timezone}
		if sc.At != nil {
			in.Schedule.At = sc.At.UTC()
		}
	}
	if fc := b.FrequencyCap; fc != nil {
		in.Cap = &store.FrequencyCap{Kind: fc.Kind, Days: fc.Days}
		if fc.Kind == "none" {
			in.Cap = &store.FrequencyCap{Kind: store.CapNone}
		}
	}
	return in
}

// ResumeBody is the optional body of POST /v1/campaigns/{id}/resume.
type ResumeBody struct {
	Reasons []string `json:"reasons,omitempty" enum:"manual,daily_quota,complaint_rate" uniqueItems:"true" doc:"The pause reasons to lift (manual, daily_quota, complaint_rate); absent: all of them" example:"[\"manual\"]"`

	strict strictBody
}

// CampaignTestBody is the body of POST /v1/campaigns/{id}/test.
type CampaignTestBody struct {
	To      []string       `json:"to" minItems:"1" maxItems:"50" doc:"The addresses to send the campaign's message to (at most 50), each in its own message tagged test" example:"[\"ann@example.com\"]"`
	Contact map[string]any `json:"contact,omitempty" doc:"Members laid over the .contact a run would render for the address (email the address, id, name, external_id, locale and timezone empty, attributes an empty object)"`

	strict strictBody
}

// CampaignTestAnswer is the answer to a test send.
type CampaignTestAnswer struct {
	Messages []Accepted `json:"messages" doc:"One message per address, in order"`
}

// RunProgressResource counts a run's recipients by state.
type RunProgressResource struct {
	Pending      int `json:"pending" doc:"Materialised, no message yet"`
	Queued       int `json:"queued" doc:"A message waits to be handed to a relay (scheduled, queued or sending)"`
	Sent         int `json:"sent" doc:"A relay accepted the message"`
	Deferred     int `json:"deferred" doc:"The message is waiting for a retry"`
	Failed       int `json:"failed" doc:"The message failed, or could not be composed"`
	Suppressed   int `json:"suppressed" doc:"The address was suppressed before the message was handed to a relay"`
	Unsubscribed int `json:"unsubscribed" doc:"The contact unsubscribed before the message was composed"`
	Bounced      int `json:"bounced" doc:"Sent, then bounced"`
	Complained   int `json:"complained" doc:"Sent, then reported as spam"`
	Cancelled    int `json:"cancelled" doc:"Cancelled with the run"`
}

// RunExcludedResource counts the contacts of a run's audience it left out, by why.
type RunExcludedResource struct {
	Unsubscribed int `json:"unsubscribed" doc:"Not subscribed to any audience list (having left), or unsubscribed from all broadcast mail"`
	Pending      int `json:"pending" doc:"Subscription waiting for its double opt-in confirmation"`
	Suppressed   int `json:"suppressed" doc:"On the suppression list (global or broadcast scope)"`
	Capped       int `json:"capped" doc:"Held back by the frequency cap"`
}

// RunResource is one run of a campaign with its progress.
type RunResource struct {
	ID              string              `json:"id" example:"run_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	CampaignID      string              `json:"campaign_id" example:"cmp_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	ScheduledAt     time.Time           `json:"scheduled_at" doc:"The occurrence it runs, in UTC; a campaign has at most one run per occurrence"`
	State           string              `json:"state" enum:"running,paused,finished,cancelled"`
	PauseReasons    []string            `json:"pause_reasons" doc:"While paused, why: manual, daily_quota, complaint_rate"`
	TemplateVersion int                 `json:"template_version" doc:"The template version the run renders with, pinned when it started"`
	Materialised    bool                `json:"materialised" doc:"Every contact of the audience has been considered: recipients is final"`
	Recipients      int                 `json:"recipients" doc:"Recipients materialised so far"`
	Excluded        RunExcludedResource `json:"excluded" doc:"Contacts of the audience left out, by why"`
	Progress        RunProgressResource `json:"progress" doc:"The recipients by state; they add up to recipients"`
	BounceRate      float64             `json:"bounce_rate" doc:"progress.bounced over the recipients a relay accepted (sent, bounced and complained); 0 before any" example:"0.004"`
	ComplaintRate   float64             `json:"complaint_rate" doc:"progress.complained over the recipients a relay accepted; 0 before any" example:"0.0003"`
	InFlight        int                 `json:"in_flight" doc:"Messages created and not yet handed to a relay (scheduled, queued or sending)"`
	Rate            float64             `json:"rate" doc:"Messages handed to a relay per second, over the last minute"`
	ETA             *time.Time          `json:"eta" doc:"When the run should end at that rate; null when unknown (no rate yet, paused) or ended"`
	StartedAt       time.Time           `json:"started_at"`
	FinishedAt      *time.Time          `json:"finished_at" doc:"When it finished or was cancelled; null before"`
}

func toRunResource(v campaign.RunView) RunResource {
	c := v.Progress.Counts
	r := RunResource{ID: v.ID, CampaignID: v.CampaignID, ScheduledAt: v.ScheduledAt, State: v.State,
		PauseReasons: nonNil(v.PauseReasons), TemplateVersion: v.TemplateVersion, Materialised: v.Materialised,
		Recipients: v.Recipients, Excluded: RunExcludedResource(v.Excluded),
		Progress: RunProgressResource{Pending: c[store.CampaignRecipientPending], Queued: c[string(store.RecipientQueued)],
			Sent: c[string(store.RecipientSent)], Deferred: c[string(store.RecipientDeferred)],
			Failed: c[string(store.RecipientFailed)], Suppressed: c[string(store.RecipientSuppressed)],
			Unsubscribed: c[store.CampaignRecipientUnsubscribed], Bounced: c[string(store.RecipientBounced)],
			Complained: c[string(store.RecipientComplained)], Cancelled: c[string(store.RecipientCancelled)]},
		InFlight: v.Progress.InFlight, Rate: v.Rate, ETA: timePtr(v.ETA), StartedAt: v.StartedAt, FinishedAt: timePtr(v.FinishedAt)}
	bounced, complained := c[string(store.RecipientBounced)], c[string(store.RecipientComplained)]
	r.BounceRate, r.ComplaintRate = reputation.Rates(c[string(store.RecipientSent)]+bounced+complained, bounced, complained)
	return r
}

// RunRecipientResource is one recipient of a run.
type RunRecipientResource struct {
	ContactID string    `json:"contact_id" example:"ctc_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Email     string    `json:"email" doc:"The address when the run materialised it"`
	ListID    string    `json:"list_id" doc:"The audience list the message is sent for (the lowest id of those the contact is on); \"\" for a segment alone"`
	Status    string    `json:"status" enum:"pending,queued,unsubscribed,suppressed,failed,cancelled" doc:"The recipient's own state: queued once its message exists (the message's status is its delivery state: GET /v1/messages/{message_id})"`
	MessageID string    `json:"message_id" doc:"Its message (msg_…), \"\" until queued"`
	Reason    string    `json:"reason" doc:"Why it is failed, suppressed or unsubscribed; \"\" otherwise"`
	UpdatedAt time.Time `json:"updated_at"`
}

type campaignCreateInput struct {
	Body CampaignBody
}

type campaignPatchInput struct {
	ID   string `path:"id" doc:"The campaign (cmp_…)"`
	Body CampaignBody
}

type campaignIDInput struct {
	ID string `path:"id" doc:"The campaign (cmp_…)"`
}

type campaignListInput struct {
	State  string `query:"state" enum:"draft,scheduled,running,paused,finished,cancelled," doc:"Only campaigns in this state"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

// Resolve checks the cursor: the id of a campaign.
func (in *campaignListInput) Resolve(huma.Context) []error {
	if in.Cursor != "" && !id.Valid(id.Campaign, in.Cursor) {
		return badCursor()
	}
	return nil
}

type campaignResumeInput struct {
	ID   string      `path:"id" doc:"The campaign (cmp_…)"`
	Body *ResumeBody `required:"false"`
}

type campaignTestInput struct {
	ID   string `path:"id" doc:"The campaign (cmp_…)"`
	Body CampaignTestBody
}

type runInput struct {
	ID  string `path:"id" doc:"The campaign (cmp_…)"`
	Run string `path:"run" doc:"The run (run_…)"`
}

type runRecipientsInput struct {
	ID     string `path:"id" doc:"The campaign (cmp_…)"`
	Run    string `path:"run" doc:"The run (run_…)"`
	Status string `query:"status" enum:"pending,queued,unsubscribed,suppressed,failed,cancelled," doc:"Only recipients in this state"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size"`
}

// Resolve checks the cursor: the id of a contact.
func (in *runRecipientsInput) Resolve(huma.Context) []error {
	if in.Cursor != "" && !id.Valid(id.Contact, in.Cursor) {
		return badCursor()
	}
	return nil
}

type campaignOutput struct {
	Body CampaignResource
}

type campaignTestOutput struct {
	Body CampaignTestAnswer
}

type runOutput struct {
	Body RunResource
}

type runsOutput struct {
	Body struct {
		Data []RunResource `json:"data" doc:"Newest scheduled first"`
	}
}

func (s *Server) registerCampaigns() {
	if s.campaigns = s.cfg.Campaigns; s.campaigns == nil {
		s.campaigns = campaign.New(campaign.Config{Store: s.cfg.Store, Messages: s.messages, Templates: s.cfg.Templates,
			Segments: s.segments, Logger: s.cfg.Logger, Now: s.cfg.Now, MessageTTL: s.cfg.MessageTTL})
	}
	tags := []string{"Campaigns"}
	huma.Register(s.api, huma.Operation{
		OperationID: "create-campaign", Method: http.MethodPost, Path: "/v1/campaigns", Tags: tags,
		Summary:       "Create a campaign (a draft)",
		Description:   "Validates the template, the audience, the data against the template's schema and the schedule, and stores the campaign as a draft: nothing is sent until it is started.",
		DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 422},
	}, s.campaignCreate)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-campaigns", Method: http.MethodGet, Path: "/v1/campaigns", Tags: tags,
		Summary: "List campaigns, newest first", Errors: []int{401, 422},
	}, s.campaignList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-campaign", Method: http.MethodGet, Path: "/v1/campaigns/{id}", Tags: tags,
		Summary: "Get a campaign", Errors: []int{401, 404},
	}, s.campaignGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "update-campaign", Method: http.MethodPatch, Path: "/v1/campaigns/{id}", Tags: tags,
		Summary:     "Change a draft, scheduled or paused campaign",
		Description: "The members given replace the stored ones; the same checks as on create, and nothing changes when one fails. A running, finished or cancelled campaign is a 409 naming its state. A run keeps the template version and audience it started with.",
		Errors:      []int{400, 401, 404, 409, 422},
	}, s.campaignPatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-campaign", Method: http.MethodDelete, Path: "/v1/campaigns/{id}", Tags: tags,
		Summary:       "Delete a campaign with its runs",
		Description:   "Its runs and their recipients are deleted; the messages sent stay. A running or paused campaign is a 409: cancel it first.",
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 404, 409},
	}, s.campaignDelete)
	for _, a := range []struct {
		verb, summary, description string
		do                         func(context.Context, string) (store.Campaign, error)
		sends                      bool // checked against the key's sender domains
	}{
		{"start", "Start a draft campaign",
			"Schedule now: a run starts at once (running). Schedule at or cron: the campaign is scheduled, and a run starts at each occurrence. The template and data are validated again. A campaign that is not a draft is a 409.",
			s.campaigns.Start, true},
		{"pause", "Pause a campaign (reason manual)",
			"Its run stops creating messages and holds those not yet handed to a relay; a scheduled campaign starts no run while paused. A draft, finished or cancelled campaign, or one already paused by hand, is a 409.",
			s.campaigns.Pause, false},
		{"cancel", "Cancel a campaign and its run",
			"The run's pending recipients and the messages not yet handed to a relay are cancelled; no further run starts. A finished or cancelled campaign is a 409.",
			s.campaigns.Cancel, false},
	} {
		huma.Register(s.api, huma.Operation{
			OperationID: a.verb + "-campaign", Method: http.MethodPost, Path: "/v1/campaigns/{id}/" + a.verb, Tags: tags,
			Summary: a.summary, Description: a.description, Errors: []int{401, 404, 409, 422},
		}, func(ctx context.Context, in *campaignIDInput) (*campaignOutput, error) {
			if a.sends {
				if err := s.campaignFromAllowed(ctx, in.ID); err != nil {
					return nil, err
				}
			}
			return s.campaignAction(ctx, in.ID, a.do)
		})
	}
	huma.Register(s.api, huma.Operation{
		OperationID: "resume-campaign", Method: http.MethodPost, Path: "/v1/campaigns/{id}/resume", Tags: tags,
		Summary:     "Lift pause reasons of a campaign",
		Description: "Lifts the reasons given (all when the body or reasons is absent); once no reason is left, the campaign runs again (or is scheduled again, if it had no run), and its held messages are due at once with their time to live renewed. A campaign that is not paused is a 409.",
		Errors:      []int{400, 401, 404, 409, 422},
	}, s.campaignResume)
	huma.Register(s.api, huma.Operation{
		OperationID: "test-campaign", Method: http.MethodPost, Path: "/v1/campaigns/{id}/test", Tags: tags,
		Summary:       "Send the campaign's message to up to 50 addresses",
		Description:   "Each address gets the message a run would send it (broadcast stream, list headers and footer), rendered with the contact given, tagged test and counted in no run.",
		DefaultStatus: http.StatusAccepted, Errors: []int{400, 401, 404, 422},
	}, s.campaignTest)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-campaign-runs", Method: http.MethodGet, Path: "/v1/campaigns/{id}/runs", Tags: tags,
		Summary: "List a campaign's runs with their progress, newest first", Errors: []int{401, 404},
	}, s.runList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-campaign-run", Method: http.MethodGet, Path: "/v1/campaigns/{id}/runs/{run}", Tags: tags,
		Summary: "Get a run with its progress, rate and ETA", Errors: []int{401, 404},
	}, s.runGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-run-recipients", Method: http.MethodGet, Path: "/v1/campaigns/{id}/runs/{run}/recipients", Tags: tags,
		Summary: "List a run's recipients, by contact id", Errors: []int{401, 404, 422},
	}, s.runRecipients)
}

// campaignError maps an error of the campaign service: its *message.Error through
// messageError (fields at prefix), others through storeError about what.
func (s *Server) campaignError(err error, prefix, what string) error {
	if me := (*message.Error)(nil); errors.As(err, &me) {
		return s.messageError(err, prefix)
	}
	return s.storeError(err, what)
}

// campaignID refuses, as a 404, an id that is no campaign's.
func campaignID(cmpID string) error {
	if !id.Valid(id.Campaign, cmpID) {
		return huma.Error404NotFound("campaign " + cmpID + " not found")
	}
	return nil
}

func (s *Server) campaignCreate(ctx context.Context, in *campaignCreateInput) (*campaignOutput, error) {
	from := "" // the default sender
	if in.Body.From != nil {
		from = *in.Body.From
	}
	if err := s.fromAllowed(ctx, "body", from); err != nil {
		return nil, err
	}
	c, err := s.campaigns.Create(ctx, in.Body.input())
	if err != nil {
		return nil, s.campaignError(err, "body", "campaign")
	}
	return &campaignOutput{Body: toCampaignResource(c)}, nil
}

func (s *Server) campaignList(ctx context.Context, in *campaignListInput) (*pageOutput[CampaignResource], error) {
	page, next, err := s.campaigns.List(ctx, store.CampaignListParams{State: in.State, Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.campaignError(err, "query", "campaigns")
	}
	out := &pageOutput[CampaignResource]{}
	out.Body.NextCursor = next
	out.Body.Data = make([]CampaignResource, len(page))
	for i, c := range page {
		out.Body.Data[i] = toCampaignResource(c)
	}
	return out, nil
}

func (s *Server) campaignGet(ctx context.Context, in *campaignIDInput) (*campaignOutput, error) {
	return s.campaignAction(ctx, in.ID, s.campaigns.Get)
}

// campaignAction checks the path's id and answers the campaign do returns for it.
func (s *Server) campaignAction(ctx context.Context, cmpID string, do func(context.Context, string) (store.Campaign, error)) (*campaignOutput, error) {
	if err := campaignID(cmpID); err != nil {
		return nil, err
	}
	c, err := do(ctx, cmpID)
	if err != nil {
		return nil, s.campaignError(err, "body", "campaign "+cmpID)
	}
	return &campaignOutput{Body: toCampaignResource(c)}, nil
}

func (s *Server) campaignPatch(ctx context.Context, in *campaignPatchInput) (*campaignOutput, error) {
	var err error
	if in.Body.From != nil {
		err = s.fromAllowed(ctx, "body", *in.Body.From)
	} else {
		err = s.campaignFromAllowed(ctx, in.ID)
	}
	if err != nil {
		return nil, err
	}
	return s.campaignAction(ctx, in.ID, func(ctx context.Context, cmpID string) (store.Campaign, error) {
		return s.campaigns.Update(ctx, cmpID, in.Body.input())
	})
}

func (s *Server) campaignDelete(ctx context.Context, in *campaignIDInput) (*struct{}, error) {
	if err := campaignID(in.ID); err != nil {
		return nil, err
	}
	if err := s.campaigns.Delete(ctx, in.ID); err != nil {
		return nil, s.campaignError(err, "body", "campaign "+in.ID)
	}
	return nil, nil
}

func (s *Server) campaignResume(ctx context.Context, in *campaignResumeInput) (*campaignOutput, error) {
	var reasons []string
	if in.Body != nil {
		reasons = in.Body.Reasons
	}
	if err := s.campaignFromAllowed(ctx, in.ID); err != nil {
		return nil, err
	}
	return s.campaignAction(ctx, in.ID, func(ctx context.Context, cmpID string) (store.Campaign, error) {
		return s.campaigns.Resume(ctx, cmpID, reasons)
	})
}

func (s *Server) campaignTest(ctx context.Context, in *campaignTestInput) (*campaignTestOutput, error) {
	if err := campaignID(in.ID); err != nil {
		return nil, err
	}
	if err := s.campaignFromAllowed(ctx, in.ID); err != nil {
		return nil, err
	}
	res, err := s.campaigns.Test(ctx, in.ID, campaign.TestParams{To: in.Body.To, Contact: in.Body.Contact})
	if err != nil {
		return nil, s.campaignError(err, "body", "campaign "+in.ID)
	}
	out := &campaignTestOutput{}
	out.Body.Messages = make([]Accepted, 0, len(res))
	for _, r := range res {
		if r.Err != nil {
			return nil, s.campaignError(r.Err, "body", "campaign "+in.ID)
		}
		out.Body.Messages = append(out.Body.Messages, Accepted{ID: r.ID, Status: string(r.Status), Warnings: r.Warnings})
	}
	return out, nil
}

func (s *Server) runList(ctx context.Context, in *campaignIDInput) (*runsOutput, error) {
	if err := campaignID(in.ID); err != nil {
		return nil, err
	}
	runs, err := s.campaigns.Runs(ctx, in.ID)
	if err != nil {
		return nil, s.campaignError(err, "body", "campaign "+in.ID)
	}
	out := &runsOutput{}
	out.Body.Data = make([]RunResource, len(runs))
	for i, r := range runs {
		out.Body.Data[i] = toRunResource(r)
	}
	return out, nil
}

// runID refuses, as a 404, ids that are no campaign's and run's.
func runID(cmpID, rID string) error {
	if err := campaignID(cmpID); err != nil {
		return err
	}
	if !id.Valid(id.Run, rID) {
		return huma.Error404NotFound("run " + rID + " not found")
	}
	return nil
}

func (s *Server) runGet(ctx context.Context, in *runInput) (*runOutput, error) {
	if err := runID(in.ID, in.Run); err != nil {
		return nil, err
	}
	v, err := s.campaigns.Run(ctx, in.ID, in.Run)
	if err != nil {
		return nil, s.campaignError(err, "body", "run "+in.Run)
	}
	return &runOutput{Body: toRunResource(v)}, nil
}

func (s *Server) runRecipients(ctx context.Context, in *runRecipientsInput) (*pageOutput[RunRecipientResource], error) {
	if err := runID(in.ID, in.Run); err != nil {
		return nil, err
	}
	// The run must be the campaign's: a run id under another campaign is not found.
	run, err := s.cfg.Store.RunGet(ctx, in.Run)
	if err == nil && run.CampaignID != in.ID {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, s.storeError(err, "run "+in.Run)
	}
	page, next, err := s.cfg.Store.RunRecipients(ctx, store.RunRecipientListParams{RunID: in.Run, Status: in.Status,
		Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.storeError(err, "run "+in.Run)
	}
	out := &pageOutput[RunRecipientResource]{}
	out.Body.NextCursor = next
	out.Body.Data = make([]RunRecipientResource, len(page))
	for i, r := range page {
		out.Body.Data[i] = RunRecipientResource{ContactID: r.ContactID, Email: r.Email, ListID: r.ListID, Status: r.Status,
			MessageID: r.MessageID, Reason: r.Reason, UpdatedAt: r.UpdatedAt}
	}
	return out, nil
}

// The strict decoding of the campaign bodies (see strictBody).
var (
	campaignBodyShape     = shapeOf(reflect.TypeFor[CampaignBody]())
	resumeBodyShape       = shapeOf(reflect.TypeFor[ResumeBody]())
	campaignTestBodyShape = shapeOf(reflect.TypeFor[CampaignTestBody]())
)

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *CampaignBody) UnmarshalJSON(data []byte) error {
	type plain CampaignBody
	return b.strict.decode(data, (*plain)(b), campaignBodyShape)
}

func (b *CampaignBody) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *ResumeBody) UnmarshalJSON(data []byte) error {
	type plain ResumeBody
	return b.strict.decode(data, (*plain)(b), resumeBodyShape)
}

func (b *ResumeBody) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *CampaignTestBody) UnmarshalJSON(data []byte) error {
	type plain CampaignTestBody
	return b.strict.decode(data, (*plain)(b), campaignTestBodyShape)
}

func (b *CampaignTestBody) Resolve(huma.Context) []error { return b.strict.errors() }
