package audience

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// SegmentsConfig configures Segments.
type SegmentsConfig struct {
	Store store.Segments
	// ListExists reports whether a list exists (store.ErrNotFound when not); nil checks nothing.
	ListExists func(ctx context.Context, id string) error
	Now        func() time.Time
}

// Segments is the segments service: declared attributes, saved segments and the evaluation of
// filters. A filter is parsed against the attributes declared when it is used, so a saved
// segment follows later declarations (and fails, with a FilterError, once an attribute it uses
// is deleted).
type Segments struct {
	cfg SegmentsConfig
}

// NewSegments returns the service.
func NewSegments(cfg SegmentsConfig) *Segments {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Segments{cfg: cfg}
}

// MaxSegmentName is the longest segment name, in bytes.
const MaxSegmentName = 200

// Parse parses and checks a filter (see ParseFilter) against the declared attributes and the
// lists that exist: an unknown list is a FilterError at its "list" key.
func (s *Segments) Parse(ctx context.Context, raw json.RawMessage) (*store.Filter, error) {
	attrs, err := s.cfg.Store.AttributeList(ctx)
	if err != nil {
		return nil, err
	}
	types := make(map[string]string, len(attrs))
	for _, a := range attrs {
		types[a.Name] = a.Type
	}
	f, lists, err := parseFilter(raw, types)
	if err != nil {
		return nil, err
	}
	if s.cfg.ListExists != nil {
		for listID, path := range lists {
			err := s.cfg.ListExists(ctx, listID)
			if errors.Is(err, store.ErrNotFound) {
				return nil, &FilterError{Path: path, Message: "no such list", Value: listID}
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// checkName checks a segment's name; its error is a FilterError at "name".
func checkName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > MaxSegmentName || strings.ContainsRune(name, 0) {
		return &FilterError{Path: "name", Message: fmt.Sprintf("must be 1 to %d bytes, not only spaces, without U+0000", MaxSegmentName), Value: name}
	}
	return nil
}

// compact returns the filter as stored: the JSON the caller gave, without insignificant space.
func compact(raw json.RawMessage) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, &FilterError{Path: "filter", Message: "not JSON: " + err.Error()}
	}
	return b.Bytes(), nil
}

// Create checks and stores a new segment.
func (s *Segments) Create(ctx context.Context, name string, filter json.RawMessage) (store.Segment, error) {
	if err := checkName(name); err != nil {
		return store.Segment{}, err
	}
	if _, err := s.Parse(ctx, filter); err != nil {
		return store.Segment{}, err
	}
	filter, err := compact(filter)
	if err != nil {
		return store.Segment{}, err
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	return s.cfg.Store.SegmentCreate(ctx, store.Segment{ID: id.New(id.Segment), Name: name, Filter: filter, CreatedAt: now, UpdatedAt: now})
}

// Update changes a segment's name and/or filter (nil: unchanged).
func (s *Segments) Update(ctx context.Context, segID string, name *string, filter json.RawMessage) (store.Segment, error) {
	seg, err := s.cfg.Store.SegmentGet(ctx, segID)
	if err != nil {
		return store.Segment{}, err
	}
	if name != nil {
		if err := checkName(*name); err != nil {
			return store.Segment{}, err
		}
		seg.Name = *name
	}
	if filter != nil {
		if _, err := s.Parse(ctx, filter); err != nil {
			return store.Segment{}, err
		}
		if seg.Filter, err = compact(filter); err != nil {
			return store.Segment{}, err
		}
	}
	seg.UpdatedAt = s.cfg.Now().UTC().Truncate(time.Microsecond)
	return s.cfg.Store.SegmentUpdate(ctx, seg)
}

// Preview counts the contacts filter matches now and returns the first limit of them (none when
// limit is 0).
func (s *Segments) Preview(ctx context.Context, filter json.RawMessage, limit int) (int, []store.Contact, error) {
	f, err := s.Parse(ctx, filter)
	if err != nil {
		return 0, nil, err
	}
	now := s.cfg.Now().UTC()
	n, err := s.cfg.Store.SegmentCount(ctx, f, now)
	if err != nil {
		return 0, nil, err
	}
	if limit <= 0 {
		return n, []store.Contact{}, nil
	}
	page, _, err := s.cfg.Store.SegmentContacts(ctx, store.SegmentContactsParams{Filter: f, Now: now, Limit: limit})
	return n, page, err
}

// Count counts the contacts a saved segment matches now.
func (s *Segments) Count(ctx context.Context, seg store.Segment) (int, error) {
	f, err := s.Parse(ctx, seg.Filter)
	if err != nil {
		return 0, err
	}
	return s.cfg.Store.SegmentCount(ctx, f, s.cfg.Now().UTC())
}

// Contacts returns one page of the contacts a saved segment matches now.
func (s *Segments) Contacts(ctx context.Context, segID, cursor string, limit int) ([]store.Contact, string, error) {
	seg, err := s.cfg.Store.SegmentGet(ctx, segID)
	if err != nil {
		return nil, "", err
	}
	f, err := s.Parse(ctx, seg.Filter)
	if err != nil {
		return nil, "", err
	}
	return s.cfg.Store.SegmentContacts(ctx, store.SegmentContactsParams{Filter: f, Now: s.cfg.Now().UTC(), Cursor: cursor, Limit: limit})
}

// Declare declares an attribute's type (see store.Segments.AttributeDeclare).
func (s *Segments) Declare(ctx context.Context, name, typ string) (store.Attribute, error) {
	if err := CheckAttribute(name, typ); err != nil {
		return store.Attribute{}, err
	}
	return s.cfg.Store.AttributeDeclare(ctx, store.Attribute{Name: name, Type: typ, CreatedAt: s.cfg.Now().UTC().Truncate(time.Microsecond)})
}

// ContactsQuery pages through the contacts matching all of a saved segment, a filter and a
// list membership (each optional).
type ContactsQuery struct {
	SegmentID string
	Filter    json.RawMessage
	ListID    string
	Status    string // with ListID: only this subscription status ("": any)
	Cursor    string
	Limit     int
}

// ErrUnknownSegment is a ContactsQuery naming a segment that does not exist.
var ErrUnknownSegment = errors.New("no such segment")

// Query returns one page of the contacts q matches now. A segment's stored filter that no longer
// checks is a FilterError with the path of the segment's filter ("segment.filter…"); q.Filter's
// errors have their own path ("filter…").
func (s *Segments) Query(ctx context.Context, q ContactsQuery) ([]store.Contact, string, error) {
	all := &store.Filter{Op: store.FilterAnd}
	if q.SegmentID != "" {
		seg, err := s.cfg.Store.SegmentGet(ctx, q.SegmentID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, "", fmt.Errorf("segment %s: %w", q.SegmentID, ErrUnknownSegment)
		}
		if err != nil {
			return nil, "", err
		}
		f, err := s.Parse(ctx, seg.Filter)
		if err != nil {
			var fe *FilterError
			if errors.As(err, &fe) {
				fe.Path = "segment." + fe.Path
			}
			return nil, "", err
		}
		all.Nodes = append(all.Nodes, f)
	}
	if q.Filter != nil {
		f, err := s.Parse(ctx, q.Filter)
		if err != nil {
			return nil, "", err
		}
		all.Nodes = append(all.Nodes, f)
	}
	if q.ListID != "" {
		all.Nodes = append(all.Nodes, &store.Filter{Op: store.FilterInList, ListID: q.ListID,
			SubscriptionStatus: cmp.Or(q.Status, store.SubscriptionAny)})
	}
	return s.cfg.Store.SegmentContacts(ctx, store.SegmentContactsParams{Filter: all, Now: s.cfg.Now().UTC(),
		Cursor: q.Cursor, Limit: q.Limit})
}
