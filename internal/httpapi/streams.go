package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/postie/postie/internal/reputation"
)

// StreamResource is a stream with its pause and its bounce and complaint rates.
type StreamResource struct {
	Stream      string                 `json:"stream" enum:"transactional,broadcast"`
	Paused      bool                   `json:"paused" doc:"Its messages wait, queued, until it is resumed"`
	PauseReason *string                `json:"pause_reason" enum:"bounce_rate,complaint_rate,manual" doc:"Why it was last paused; null when it never was"`
	PauseDetail *string                `json:"pause_detail" doc:"The rates and counts that paused it"`
	PausedAt    *time.Time             `json:"paused_at" doc:"When it was last paused; null when it never was"`
	ResumedAt   *time.Time             `json:"resumed_at" doc:"When it was last resumed; from the first whole hour after it, only what is counted since counts toward pausing it again"`
	Warning     bool                   `json:"warning" doc:"A window with enough volume has a complaint rate at or over POSTIE_COMPLAINT_WARN"`
	Windows     []StreamWindowResource `json:"windows" doc:"The last 24 hours and the last 7 days"`
}

// StreamWindowResource is a stream's counts and rates over one rolling window.
type StreamWindowResource struct {
	Window        string    `json:"window" enum:"24h,7d"`
	Since         time.Time `json:"since" doc:"The start of the window, rounded down to the hour (counts are hourly)"`
	Delivered     int       `json:"delivered" doc:"Recipients the relay accepted"`
	Bounced       int       `json:"bounced" doc:"Bounces reported (DSNs, SES) in the window"`
	Complained    int       `json:"complained" doc:"Complaints reported (ARF, SES) in the window"`
	BounceRate    float64   `json:"bounce_rate" doc:"bounced / delivered (0 when nothing was delivered)" example:"0.004"`
	ComplaintRate float64   `json:"complaint_rate" doc:"complained / delivered (0 when nothing was delivered)" example:"0.0003"`
	EnoughVolume  bool      `json:"enough_volume" doc:"delivered reached POSTIE_RATE_MIN_VOLUME: the rates may warn or pause the stream"`
}

func toStreamResource(st reputation.StreamStats) StreamResource {
	r := StreamResource{Stream: st.Stream, Paused: st.State.Paused, Warning: st.Warning,
		PausedAt: timePtr(st.State.PausedAt), ResumedAt: timePtr(st.State.ResumedAt),
		Windows: make([]StreamWindowResource, len(st.Windows))}
	if !st.State.PausedAt.IsZero() {
		r.PauseReason, r.PauseDetail = &st.State.Reason, &st.State.Detail
	}
	for i, w := range st.Windows {
		r.Windows[i] = StreamWindowResource{Window: w.Window, Since: w.Since, Delivered: w.Delivered, Bounced: w.Bounced,
			Complained: w.Complained, BounceRate: w.BounceRate, ComplaintRate: w.ComplaintRate, EnoughVolume: w.Enough}
	}
	return r
}

type streamInput struct {
	Stream string `path:"stream" doc:"transactional or broadcast"`
}

type streamOutput struct {
	Body StreamResource
}

type streamListOutput struct {
	Body struct {
		Data []StreamResource `json:"data"`
	}
}

func (s *Server) registerStreams() {
	tags := []string{"Streams"}
	huma.Register(s.api, huma.Operation{
		OperationID: "list-streams", Method: http.MethodGet, Path: "/v1/streams", Tags: tags,
		Summary:     "List the streams with their rates",
		Description: "Each stream's pause and its bounce and complaint rates over the last 24 hours and 7 days.",
		Errors:      []int{401},
	}, s.streamList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-stream", Method: http.MethodGet, Path: "/v1/streams/{stream}", Tags: tags,
		Summary: "Get a stream with its rates", Errors: []int{401, 404},
	}, s.streamGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "resume-stream", Method: http.MethodPost, Path: "/v1/streams/{stream}/resume", Tags: tags,
		Summary: "Resume a paused stream",
		Description: "Ends the pause of a stream its bounce or complaint rate paused: its waiting messages go out. " +
			"Only what is counted from the first whole hour after the resume counts toward pausing it again. " +
			"409 when it is not paused.",
		Errors: []int{401, 404, 409},
	}, s.streamResume)
}

func (s *Server) streamList(ctx context.Context, _ *struct{}) (*streamListOutput, error) {
	stats, err := s.reputation.Stats(ctx)
	if err != nil {
		return nil, s.storeError(err, "streams")
	}
	out := &streamListOutput{}
	out.Body.Data = make([]StreamResource, len(stats))
	for i, st := range stats {
		out.Body.Data[i] = toStreamResource(st)
	}
	return out, nil
}

func (s *Server) streamGet(ctx context.Context, in *streamInput) (*streamOutput, error) {
	st, err := s.reputation.Stream(ctx, in.Stream)
	if err != nil {
		return nil, s.streamError(err, in.Stream)
	}
	return &streamOutput{Body: toStreamResource(st)}, nil
}

func (s *Server) streamResume(ctx context.Context, in *streamInput) (*streamOutput, error) {
	st, err := s.reputation.Resume(ctx, in.Stream)
	if err != nil {
		return nil, s.streamError(err, in.Stream)
	}
	return &streamOutput{Body: toStreamResource(st)}, nil
}

func (s *Server) streamError(err error, stream string) error {
	switch {
	case errors.Is(err, reputation.ErrUnknownStream):
		return huma.Error404NotFound("stream " + stream + " not found: the streams are transactional and broadcast")
	case errors.Is(err, reputation.ErrNotPaused):
		return huma.Error409Conflict("stream " + stream + " is not paused")
	}
	return s.storeError(err, "stream "+stream)
}
