package campaign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/templates"
)

// Limits of a campaign's fields.
const (
	maxName     = 200
	maxLists    = 100
	maxTags     = 19 // a test send adds "test" to the messages' 20
	maxCapDays  = 3650
	maxSubject  = 998 // one header line (RFC 5322 §2.1.1)
	atSlack     = time.Minute
	nullJSONLit = "null"
)

// problems collects the Problems of one campaign.
type problems []message.Problem

func (p *problems) add(field, msg string, value any) {
	*p = append(*p, message.Problem{Field: field, Message: msg, Value: value})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &message.Error{Kind: message.KindInvalid, Problems: p}
}

// apply copies the fields in sets onto c.
func apply(c *store.Campaign, in Input) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&c.Name, in.Name)
	set(&c.Template, in.Template)
	set(&c.Segment, in.Segment)
	set(&c.From, in.From)
	set(&c.ReplyTo, in.ReplyTo)
	if in.Subject != nil {
		c.Subject = *in.Subject
	}
	if in.TemplateVersion != nil {
		c.TemplateVersion = *in.TemplateVersion
	}
	if in.Lists != nil {
		c.Lists = slices.Clone(*in.Lists)
	}
	if in.Data != nil {
		c.Data = slices.Clone(in.Data)
		if string(bytes.TrimSpace(in.Data)) == nullJSONLit {
			c.Data = nil
		}
	}
	if in.Tags != nil {
		c.Tags = slices.Clone(*in.Tags)
	}
	if in.Rate != nil {
		c.Rate = *in.Rate
	}
	if in.Schedule != nil {
		c.Schedule = *in.Schedule
		if c.Schedule.Kind == "" {
			c.Schedule.Kind = store.ScheduleNow
		}
		c.Schedule.At = c.Schedule.At.UTC()
	}
	if in.Cap != nil {
		c.Cap = *in.Cap
	}
	if in.ResumeNextDay != nil {
		c.ResumeNextDay = *in.ResumeNextDay
	}
}

// checkParams says which checks depend on the moment.
type checkParams struct {
	now time.Time
	// at: an "at" schedule must be in the future (on create, on a change of the schedule, at
	// start), not on other changes of a campaign whose time has come.
	at bool
}

// check validates c: its own fields, and what it names (template, lists, segment) against the
// store. It returns the template version the data was checked against. Failures are a
// *message.Error: KindInvalid with every problem, or the store's failure.
func (s *Service) check(ctx context.Context, c *store.Campaign, p checkParams) (int, error) {
	var pr problems
	if c.Name == "" || len(c.Name) > maxName || !utf8.ValidString(c.Name) || strings.ContainsRune(c.Name, 0) {
		pr.add("name", fmt.Sprintf("required: 1 to %d characters, without U+0000", maxName), c.Name)
	}
	if c.From != "" {
		if _, err := mail.ParseAddress(c.From); err != nil {
			pr.add("from", err.Error(), c.From)
		}
	}
	if c.ReplyTo != "" {
		if _, err := mail.ParseAddress(c.ReplyTo); err != nil {
			pr.add("reply_to", err.Error(), c.ReplyTo)
		}
	}
	if c.Subject != "" {
		if err := mail.CheckHeaderValue(c.Subject); err != nil || len(c.Subject) > maxSubject || !utf8.ValidString(c.Subject) {
			pr.add("subject", fmt.Sprintf("at most %d characters on one line, without control characters", maxSubject), c.Subject)
		}
	}
	if len(c.Tags) > maxTags {
		pr.add("tags", fmt.Sprintf("too many tags: at most %d (a test send adds \"test\")", maxTags), len(c.Tags))
	} else {
		pr = append(pr, message.CheckTags(c.Tags)...)
	}
	if math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0 {
		pr.add("rate", "messages per second: 0 (no limit of its own) or more", c.Rate)
	}
	checkSchedule(&pr, c.Schedule, p)
	switch c.Cap.Kind {
	case store.CapNone, store.CapOncePerContact:
		if c.Cap.Days != 0 {
			pr.add("frequency_cap.days", "only with kind days", c.Cap.Days)
		}
	case store.CapDays:
		if c.Cap.Days < 1 || c.Cap.Days > maxCapDays {
			pr.add("frequency_cap.days", fmt.Sprintf("1 to %d days", maxCapDays), c.Cap.Days)
		}
	default:
		pr.add("frequency_cap.kind", "want once_per_contact or days (or no frequency_cap)", c.Cap.Kind)
	}
	if err := s.checkAudience(ctx, &pr, c); err != nil {
		return 0, err
	}
	version, err := s.checkTemplate(ctx, &pr, c)
	if err != nil {
		return 0, err
	}
	return version, pr.err()
}

// checkSchedule checks a campaign's schedule.
func checkSchedule(pr *problems, sch store.Schedule, p checkParams) {
	switch sch.Kind {
	case store.ScheduleNow, store.ScheduleAt, store.ScheduleCron:
	default:
		pr.add("schedule.kind", "want now, at or cron", sch.Kind)
		return
	}
	if sch.Kind == store.ScheduleAt {
		switch {
		case sch.At.IsZero():
			pr.add("schedule.at", "required for kind at: the time to send, e.g. 2026-12-07T09:00:00Z", nil)
		case p.at && sch.At.Before(p.now.Add(-atSlack)):
			pr.add("schedule.at", "is in the past", sch.At.Format(time.RFC3339))
		}
	} else if !sch.At.IsZero() {
		pr.add("schedule.at", "only with kind at", sch.At.Format(time.RFC3339))
	}
	if sch.Kind == store.ScheduleCron {
		if msg := checkCron(sch.Cron); msg != "" {
			pr.add("schedule.cron", msg, sch.Cron)
		}
		if _, err := loadZone(sch.Timezone); err != nil {
			pr.add("schedule.timezone", "not an IANA time zone name like Asia/Seoul or Europe/Paris", sch.Timezone)
		}
		return
	}
	if sch.Cron != "" {
		pr.add("schedule.cron", "only with kind cron", sch.Cron)
	}
	if sch.Timezone != "" {
		pr.add("schedule.timezone", "only with kind cron", sch.Timezone)
	}
}

// checkAudience checks that the lists and the segment exist (and that the segment's filter
// still checks). Only store failures are returned.
func (s *Service) checkAudience(ctx context.Context, pr *problems, c *store.Campaign) error {
	if len(c.Lists) == 0 && c.Segment == "" {
		pr.add("audience", "give lists, a segment, or both", nil)
		return nil
	}
	if len(c.Lists) > maxLists {
		pr.add("audience.lists", fmt.Sprintf("at most %d lists", maxLists), len(c.Lists))
		return nil
	}
	for i, l := range c.Lists {
		field := fmt.Sprintf("audience.lists[%d]", i)
		if slices.Index(c.Lists, l) < i {
			pr.add(field, "the same list twice", l)
			continue
		}
		if !strings.HasPrefix(l, "lst_") {
			pr.add(field, "not a list id (lst_…)", l)
			continue
		}
		_, err := s.cfg.Store.ListGet(ctx, l)
		if errors.Is(err, store.ErrNotFound) {
			pr.add(field, "no such list", l)
		} else if err != nil {
			return storeFailure(err, "list "+l)
		}
	}
	if c.Segment != "" {
		if _, err := s.segmentFilter(ctx, c.Segment); err != nil {
			var fe *audience.FilterError
			switch {
			case errors.Is(err, store.ErrNotFound):
				pr.add("audience.segment", "no such segment", c.Segment)
			case errors.As(err, &fe):
				pr.add("audience.segment", "the segment's filter no longer checks: "+fe.Error(), c.Segment)
			default:
				return storeFailure(err, "segment "+c.Segment)
			}
		}
	}
	return nil
}

// segmentFilter is the compiled filter of a saved segment: store.ErrNotFound when there is
// none, an *audience.FilterError when its filter no longer checks.
func (s *Service) segmentFilter(ctx context.Context, segID string) (*store.Filter, error) {
	seg, err := s.cfg.Store.SegmentGet(ctx, segID)
	if err != nil {
		return nil, err
	}
	return s.segments.Parse(ctx, seg.Filter)
}

// checkTemplate checks the template and version exist and the data satisfies the template's
// schema, and returns the version checked.
func (s *Service) checkTemplate(ctx context.Context, pr *problems, c *store.Campaign) (int, error) {
	if c.TemplateVersion < 0 {
		pr.add("template_version", "1 or more, or 0 for the latest when a run starts", c.TemplateVersion)
		return 0, nil
	}
	if c.Template == "" || !templates.ValidName(c.Template) {
		pr.add("template", "required: the name of a stored template", c.Template)
		return 0, nil
	}
	if c.Data != nil && !json.Valid(c.Data) {
		pr.add("data", "not JSON", nil)
		return 0, nil
	}
	version, err := s.cfg.Templates.CheckData(ctx, c.Template, c.TemplateVersion, c.Data)
	var ie *templates.InvalidError
	if errors.As(err, &ie) {
		for _, tp := range ie.Problems {
			switch {
			case tp.Field == "version":
				pr.add("template_version", tp.Text(), c.TemplateVersion)
			case tp.Field == "data" || strings.HasPrefix(tp.Field, "data/"):
				pr.add(tp.Field, tp.Text(), nil)
			default:
				pr.add("template", tp.Text(), c.Template)
			}
		}
		return 0, nil
	}
	if err != nil {
		return 0, storeFailure(err, "template "+c.Template)
	}
	return version, nil
}

// storeFailure is a store (or other) failure about subject as a *message.Error.
func storeFailure(err error, subject string) error {
	if err == nil {
		return nil
	}
	var me *message.Error
	if errors.As(err, &me) {
		return err
	}
	kind := message.KindInternal
	switch {
	case errors.Is(err, store.ErrNotFound):
		kind = message.KindNotFound
	case errors.Is(err, store.ErrConflict):
		kind = message.KindConflict
	case errors.Is(err, store.ErrBadCursor), errors.Is(err, store.ErrBadText):
		kind = message.KindInvalid
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		kind = message.KindUnavailable
	}
	return &message.Error{Kind: kind, Subject: subject, Err: err}
}

// conflict is the KindConflict error of an operation the campaign's state does not allow.
func conflict(c store.Campaign, what string) error {
	return &message.Error{Kind: message.KindConflict, Subject: "campaign " + c.ID, Err: store.ErrConflict,
		Problems: []message.Problem{{Message: fmt.Sprintf("the campaign is %s: %s", c.State, what), Value: c.State}}}
}
