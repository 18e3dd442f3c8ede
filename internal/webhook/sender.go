package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/store"
)

// Response bodies: read up to maxRead (so that a connection can be reused), keep maxExcerpt.
const (
	maxRead    = 64 << 10
	maxExcerpt = 1 << 10
)

// job is one claimed delivery, ready to send.
type job struct {
	d        store.WebhookDelivery
	endpoint store.WebhookEndpoint
	body     []byte
}

// result is the outcome of one attempt.
type result struct {
	d       store.WebhookDelivery
	attempt store.WebhookAttempt
}

func (r result) ok() bool { return r.attempt.Error == "" }

// perEndpoint is how many requests one endpoint may have in flight (and claimed) at once.
func (s *Service) perEndpoint() int { return max(1, (s.cfg.Concurrency+3)/4) }

// leaseFor is how long a claimed delivery is leased: one claim holds at most Concurrency
// deliveries of one endpoint, sent perEndpoint at a time, each within Timeout; plus a margin.
func (s *Service) leaseFor() time.Duration {
	rounds := (s.cfg.Concurrency + s.perEndpoint() - 1) / s.perEndpoint()
	return time.Duration(rounds+1)*s.cfg.Timeout + 30*time.Second
}

// prepare builds the jobs of claimed deliveries: each endpoint and each message read once. A
// delivery whose endpoint was deleted since is dropped (its row went with it). One whose endpoint
// was disabled since it was claimed is sent all the same: its attempt is recorded, so that it is
// not left leased, and waits pending if it fails (enabling the endpoint sends it at once).
func (s *Service) prepare(ctx context.Context, ds []store.WebhookDelivery) ([]job, error) {
	msgs, err := messages(ctx, s.cfg.Store, ds)
	if err != nil {
		return nil, err
	}
	eps := map[string]*store.WebhookEndpoint{}
	jobs := make([]job, 0, len(ds))
	for _, d := range ds {
		ep, ok := eps[d.EndpointID]
		if !ok {
			e, err := s.cfg.Store.WebhookGet(ctx, d.EndpointID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			if err == nil {
				ep = &e
			}
			eps[d.EndpointID] = ep
		}
		if ep == nil {
			continue
		}
		body, err := Body(d, msgs[d.Subject])
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job{d: d, endpoint: *ep, body: body})
	}
	return jobs, nil
}

// send makes one attempt of j: a signed POST, its response read (capped) and judged.
// dialGuarded is dial with a panic reported and returned as an error: net/http dials on a
// goroutine of its own, where a panic would end the process.
func dialGuarded(dial func(ctx context.Context, network, address string) (net.Conn, error), r errtrack.Reporter) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (c net.Conn, err error) {
		if errtrack.Guard(ctx, r, "webhook sender", func() { c, err = dial(ctx, network, address) }) {
			return nil, errors.New("internal error while connecting (reported to the operator)")
		}
		return c, err
	}
}

// sendGuarded is send, with a panic reported (Config.Errors) and recorded as a failed attempt,
// retried on the ladder like any other.
func (s *Service) sendGuarded(ctx context.Context, j job) (r result) {
	if errtrack.Guard(ctx, s.cfg.Errors, "webhook sender", func() { r = s.send(ctx, j) }) {
		r = result{d: j.d, attempt: store.WebhookAttempt{DeliveryID: j.d.ID, At: s.cfg.Now().UTC(),
			Error: "internal error while sending (reported to the operator)"}}
	}
	return r
}

func (s *Service) send(ctx context.Context, j job) result {
	now := s.cfg.Now()
	r := result{d: j.d, attempt: store.WebhookAttempt{DeliveryID: j.d.ID, At: now.UTC()}}
	start := time.Now()
	defer func() { r.attempt.Duration = time.Since(start) }()
	msgID := MessageID(j.d.ID)
	sig, err := Signatures(j.endpoint, msgID, now, j.body)
	if err != nil {
		r.attempt.Error = err.Error()
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.endpoint.URL, bytes.NewReader(j.body))
	if err != nil {
		r.attempt.Error = "the URL cannot be requested: " + err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	req.Header.Set(HeaderID, msgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		r.attempt.Error = requestError(err)
		return r
	}
	defer resp.Body.Close()
	buf, rerr := io.ReadAll(io.LimitReader(resp.Body, maxRead))
	r.attempt.Code = resp.StatusCode
	r.attempt.Response = excerpt(buf)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if rerr != nil {
			// The receiver said 2xx: it has the payload, whatever happened to the rest.
			s.log.Debug("reading a webhook response failed after a 2xx", "delivery", msgID, "err", rerr)
		}
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.attempt.Error = fmt.Sprintf("HTTP %d: redirects are not followed (Location: %.200s)", resp.StatusCode, resp.Header.Get("Location"))
	default:
		r.attempt.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return r
}

// requestError words a failed request without repeating its URL.
func requestError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, ErrRefusedAddress):
		var re *refusedError
		if errors.As(err, &re) {
			return "connection refused by the address policy: " + re.Error()
		}
		return "connection refused by the address policy: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out (POSTIE_WEBHOOK_TIMEOUT)"
	}
	return err.Error()
}

// excerpt is the start of a response body, valid UTF-8, at most maxExcerpt bytes.
func excerpt(b []byte) string {
	if len(b) > maxExcerpt {
		b = b[:maxExcerpt]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(strings.ReplaceAll(string(b), "\x00", ""), "\uFFFD")
}

// jitter is d ±20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// finish records attempts in one transaction, then disables the endpoints failing for longer
// than DisableAfter.
func (s *Service) finish(ctx context.Context, rs []result) error {
	if len(rs) == 0 {
		return nil
	}
	now := s.cfg.Now().UTC()
	ps := make([]store.WebhookFinishParams, len(rs))
	failing := map[string]string{} // endpoint → its last error
	for i, r := range rs {
		p := store.WebhookFinishParams{ID: r.d.ID, Owner: r.d.LeaseOwner, Status: store.DeliveryDelivered, Attempt: r.attempt}
		if !r.ok() {
			n := r.d.Attempts + 1 // this attempt's number
			if n <= len(s.cfg.RetryDelays) {
				p.Status, p.NextAttemptAt = store.DeliveryPending, now.Add(jitter(s.cfg.RetryDelays[n-1]))
			} else {
				p.Status = store.DeliveryFailed
			}
			failing[r.d.EndpointID] = describe(r.attempt)
		}
		ps[i] = p
	}
	held, err := s.cfg.Store.WebhookFinish(ctx, now, ps)
	if err != nil {
		return fmt.Errorf("recording webhook attempts: %w", err)
	}
	if held < len(ps) {
		s.log.Warn("webhook deliveries whose lease ended before their attempt was recorded (another node sends them again)",
			"lost", len(ps)-held)
	}
	var errs []error
	for ep, last := range failing {
		errs = append(errs, s.disableIfFailing(ctx, ep, last, now))
	}
	return errors.Join(errs...)
}

// describe is an attempt's failure as a disabled endpoint's reason quotes it.
func describe(a store.WebhookAttempt) string {
	if a.Response != "" {
		return fmt.Sprintf("%s: %.200s", a.Error, a.Response)
	}
	return a.Error
}

// disableIfFailing disables endpoint ep when it has been failing for DisableAfter or more.
func (s *Service) disableIfFailing(ctx context.Context, ep, last string, now time.Time) error {
	e, err := s.cfg.Store.WebhookGet(ctx, ep)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !e.Enabled || e.FailingSince.IsZero() || now.Sub(e.FailingSince) < s.cfg.DisableAfter {
		return nil
	}
	reason := fmt.Sprintf("failing since %s: last error: %s", e.FailingSince.UTC().Format(time.RFC3339), last)
	if err := s.cfg.Store.WebhookDisable(ctx, ep, reason, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.log.Warn("webhook endpoint disabled: failing for too long (enable it again with PATCH /v1/webhooks/{id})",
		"webhook", ep, "url", store.WebhookOrigin(e.URL), "reason", reason)
	return nil
}

// Tick claims the deliveries due at Now (up to Concurrency), sends them at once, and records
// their outcomes before it returns how many it attempted. Tests drive a clock through it; Serve
// is the running form.
func (s *Service) Tick(ctx context.Context) (int, error) {
	now := s.cfg.Now().UTC()
	ds, err := s.cfg.Store.WebhookClaim(ctx, store.WebhookClaimParams{Owner: s.claimOwner(), Limit: s.cfg.Concurrency,
		Now: now, LeaseUntil: now.Add(s.leaseFor())})
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	jobs, err := s.prepare(ctx, ds)
	if err != nil {
		return 0, err
	}
	rs := make([]result, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { rs[i] = s.sendGuarded(ctx, j) })
	}
	wg.Wait()
	return len(rs), s.finish(ctx, rs)
}

// scheduler is Serve's state: what this node has claimed and is sending, per endpoint.
type scheduler struct {
	mu      sync.Mutex
	running int              // requests in flight
	active  map[string]int   // per endpoint: requests in flight
	held    map[string]int   // per endpoint: claimed and not yet finished (in flight or queued)
	queue   map[string][]job // per endpoint: claimed, waiting for a slot
	queued  int              // in all queues
	freed   chan struct{}    // a slot was freed
	results chan result      // to the finisher
	senders sync.WaitGroup   // requests in flight
	sendCtx context.Context  // the requests' context: not cancelled by Serve's end
	service *Service
}

// Serve sends due deliveries until ctx is cancelled, then lets the requests in flight end,
// records them, and hands back the leases of the deliveries it had not started.
func (s *Service) Serve(ctx context.Context) error {
	sc := &scheduler{active: map[string]int{}, held: map[string]int{}, queue: map[string][]job{},
		freed: make(chan struct{}, 1), results: make(chan result, 4*s.cfg.Concurrency),
		sendCtx: context.WithoutCancel(ctx), service: s}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s.finisher(context.WithoutCancel(ctx), sc.results)
	}()
	wakeups := s.cfg.Store.WebhookWakeups()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			continue
		case <-timer.C:
		case <-wakeups:
		case <-s.wake:
		case <-sc.freed:
		}
		full, busy, err := sc.claim(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("claiming webhook deliveries failed", "err", err)
		}
		// A delivery due later is waited for; one due now that was not claimed waits for a free
		// slot (its endpoint holds its share, or every slot is busy): a freed slot wakes the loop.
		wait := s.cfg.Poll
		if full {
			wait = 0
		} else if !busy && err == nil {
			if t, ok, err := s.cfg.Store.WebhookNextDue(ctx); err == nil && ok {
				if d := t.Sub(s.cfg.Now()); d > 0 {
					wait = min(wait, d)
				}
			}
		}
		timer.Reset(wait)
	}
	// Stop: the queued deliveries are dropped (their leases handed back below), the requests in
	// flight end within Timeout and are recorded.
	sc.mu.Lock()
	clear(sc.queue)
	sc.queued = 0
	sc.mu.Unlock()
	sc.senders.Wait()
	close(sc.results)
	<-finished
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if n, err := s.cfg.Store.WebhookReleaseLeases(rctx, s.cfg.Owner, s.cfg.Now().UTC()); err != nil {
		s.log.Error("handing back webhook delivery leases failed; they are taken over when they end", "err", err)
	} else if n > 0 {
		s.log.Info("handed back webhook delivery leases", "deliveries", n)
	}
	return nil
}

// claim claims as many due deliveries as there are free slots, leaving out the endpoints that
// hold their share, and starts what it can. full: the claim filled every free slot (there may be
// more due); busy: too few slots were free to claim.
func (sc *scheduler) claim(ctx context.Context) (full, busy bool, err error) {
	s := sc.service
	sc.mu.Lock()
	// Claim when a quarter of the slots are free (or the claim would fill all that are), so that
	// one claim, a write, serves several deliveries while a backlog lasts.
	free := s.cfg.Concurrency - sc.running
	if free < s.perEndpoint() && sc.running > 0 || sc.queued >= 4*s.cfg.Concurrency {
		free = 0
	}
	var except []string
	for ep, n := range sc.held {
		if n >= s.perEndpoint() {
			except = append(except, ep)
		}
	}
	sc.mu.Unlock()
	if free <= 0 {
		return false, true, nil
	}
	now := s.cfg.Now().UTC()
	ds, err := s.cfg.Store.WebhookClaim(ctx, store.WebhookClaimParams{Owner: s.claimOwner(), Limit: free, Now: now,
		LeaseUntil: now.Add(s.leaseFor()), ExceptEndpoints: except})
	if err != nil || len(ds) == 0 {
		return false, false, err
	}
	jobs, err := s.prepare(ctx, ds)
	if err != nil {
		return false, false, err
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, j := range jobs {
		ep := j.d.EndpointID
		sc.queue[ep] = append(sc.queue[ep], j)
		sc.held[ep]++
		sc.queued++
	}
	sc.dispatch()
	return len(ds) == free, false, nil
}

// dispatch starts queued jobs while slots are free, within each endpoint's share. Called with
// mu held.
func (sc *scheduler) dispatch() {
	s := sc.service
	for ep, q := range sc.queue {
		for len(q) > 0 && sc.running < s.cfg.Concurrency && sc.active[ep] < s.perEndpoint() {
			j := q[0]
			q = q[1:]
			sc.queued--
			sc.running++
			sc.active[ep]++
			sc.senders.Go(func() { sc.run(j) })
		}
		if len(q) == 0 {
			delete(sc.queue, ep)
		} else {
			sc.queue[ep] = q
		}
	}
}

// run sends one job, hands its result to the finisher, and frees its slot.
func (sc *scheduler) run(j job) {
	s := sc.service
	// A delivery whose lease could end before the attempt does is left to whoever claims it
	// next: recording it would fail anyway.
	if !s.cfg.Now().Add(s.cfg.Timeout).Before(j.d.LeaseUntil) {
		s.log.Warn("a webhook delivery waited too long for its turn; it is sent when its lease ends", "delivery", MessageID(j.d.ID))
	} else {
		sc.results <- s.sendGuarded(sc.sendCtx, j)
	}
	sc.mu.Lock()
	ep := j.d.EndpointID
	sc.running--
	if sc.active[ep]--; sc.active[ep] == 0 {
		delete(sc.active, ep)
	}
	if sc.held[ep]--; sc.held[ep] == 0 {
		delete(sc.held, ep)
	}
	sc.dispatch()
	sc.mu.Unlock()
	select {
	case sc.freed <- struct{}{}:
	default:
	}
}

// finisher records results in batches: whatever arrived while the previous batch was being
// recorded goes into the next.
func (s *Service) finisher(ctx context.Context, results <-chan result) {
	const maxBatch = 500
	for r := range results {
		batch := []result{r}
	more:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-results:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var err error
		// A panic recording a batch is reported and stopped: its leases end, so it is sent again.
		if errtrack.Guard(fctx, s.cfg.Errors, "webhook finisher", func() { err = s.finish(fctx, batch) }) {
			err = errors.New("panicked")
		}
		if err != nil {
			s.log.Error("recording webhook attempts failed; the deliveries are sent again when their leases end", "err", err)
		}
		cancel()
	}
}
