// Package delivery is the dispatcher: it claims due messages from the store, hands them to the
// transport, and records every outcome.
//
// # The cycle
//
// Each stream (transactional, broadcast) has its own claimer and its own pool of senders, so a
// broadcast backlog never occupies the workers a password reset needs. The claimer keeps a local
// queue of claimed messages, at most 2 × Batch of them, from which the senders take their work.
// Claims are big, because every claim is a durable commit on the store's one writer: while the
// last claim came back full (a backlog), the claimer waits until the queue is down to Batch
// messages and then claims Batch more, so one commit serves Batch messages and the senders never
// run dry while it commits. When the last claim came back short (no backlog), it claims as soon as
// any room is free, so a new message on an idle server goes out at once. Each claim's recipients
// are looked up in the suppression list in one query. A sender drops suppressed recipients,
// sends, and hands the outcome to the finishers. Each of two finishers records outcomes in batches:
// whatever piled up while its previous batch was being committed goes into the next one, so one
// durable commit covers many state changes. With nothing to claim the claimer sleeps until the
// store signals new work (Store.Wakeups), the earliest scheduled message falls due, or the poll
// interval passes, whichever is first.
//
// A store that claims at accept (store.AcceptClaims: both drivers) hands the stream messages straight
// from the accepting request, leased to this engine and with the MIME the accept held, whenever
// the local queue has room and the claimer has no backlog (older due messages keep going first,
// by claim) and the breaker is closed: no claim statement, no read of the rows back. They take
// slots as claimed ones do, so the queue never holds more than 2 × Batch either way.
//
// # Outcomes
//
// Outcomes are per recipient (store.RecipientStatus). A 2xx is sent. A permanent error fails at
// once; a hard bounce (5.1.1 and kin) suppresses the address in the same commit. A temporary or
// throttle error counts an attempt and defers along the retry ladder (±20% jitter) unless the
// attempts or the TTL (expires_at) are used up, which fails. The relay answers each RCPT on its
// own, so a recipient it refuses while accepting others is judged alone: the others are sent,
// and a deferred one is tried again on the ladder by itself. An error of the whole transaction
// (DATA, a lost connection) applies to every recipient of the attempt, except with bounce
// addresses (Config.BounceAddress, verp.go): then each recipient goes in a transaction of its
// own, with its own envelope sender, and every reply concerns its recipient alone. Suppressed recipients
// are dropped before the send and end suppressed; a message whose recipients are all suppressed
// is not sent at all.
//
// When every recipient of an attempt shares one outcome (the common case: one recipient, or all
// sent), the outcome is recorded on the message row alone, as cheap as ever. Otherwise the
// message becomes split (store.MessageFinishParams.Split): each recipient's state is recorded,
// later claims return only its pending recipients, and once none is pending its status is
// derived from all of them (store.DeriveStatus: sent, failed or partially_failed …). Every
// outcome is an event in the message's timeline naming the recipients it concerns.
//
// # An unreachable relay
//
// When the transport cannot reach the relay at all (refused, TLS or AUTH failure, timeout before
// MAIL, a quota), the circuit breaker opens: nothing is claimed until its backoff passes, then
// one message probes the relay, and the first reply closes it again. Messages that met the open
// breaker wait (deferred) without spending an attempt, until it closes, within their TTL.
//
// # Leases
//
// Every message between its claim and its recorded outcome, whether it is being sent or still
// waiting in the local queue, is in the engine's lease set, which a renewer extends every Lease/3,
// so a slow send (a stalled relay, a rate limit) keeps its message and so do the messages queued
// behind it. If the process dies, the rescue loop of any live node returns expired leases to
// queued. On shutdown, Run stops claiming, drops the queued messages unsent, lets in-flight sends
// finish within ShutdownTimeout, records their outcomes, and hands the remaining leases (the
// queued ones among them) back at once.
package delivery

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/transport"
)

// defaultBatch is the default StreamConfig.Batch: large enough that one claim's commit is shared
// by many messages, since every claim is a write on the store's serial writer.
const defaultBatch = 256

// StreamConfig sizes one stream's worker pool.
type StreamConfig struct {
	Concurrency int // senders working at once (default 8)
	// Batch is the most messages claimed in one store call (default 256); the stream holds at
	// most 2 × Batch claimed messages that are not sent yet.
	Batch int
}

// Config configures an Engine.
type Config struct {
	Store     store.MessageQueue
	Transport transport.Transport
	Owner     string        // this node's lease owner name
	Lease     time.Duration // default 60s
	// RetryDelays is the backoff ladder after the 1st, 2nd, … failed attempt.
	RetryDelays []time.Duration
	// BreakerMin and BreakerMax bound the circuit breaker's backoff while the relay cannot be
	// reached (defaults 2s and 2m); it doubles with every failed probe.
	BreakerMin, BreakerMax time.Duration
	ShutdownTimeout        time.Duration // default 30s
	PollInterval           time.Duration // fallback poll, default 5s
	Streams                map[string]StreamConfig
	Now                    func() time.Time
	Jitter                 func() float64 // uniform in [0,1); default math/rand
	Logger                 *slog.Logger
	// ErasedKey, when set, gives the suppression-list key of an erased person from a lowercased
	// address (audience.Keys.ErasedKey): each recipient is also looked up in that form.
	ErasedKey func(email string) string
	// BounceAddress, when set, gives the envelope sender (MAIL FROM) of recipient rcpt of the
	// message messageID whose sender is envelopeFrom: its signed bounce address (VERP, verp.go),
	// or "" to keep envelopeFrom. With a bounce address, each recipient of an attempt goes in
	// an SMTP transaction of its own.
	BounceAddress func(messageID, rcpt, envelopeFrom string) string
	// Errors takes the panics recovered in the engine's workers and the store failures; nil
	// logs them (errtrack.Log).
	Errors errtrack.Reporter
	// LogPII writes the recipients and the relay's replies as they are in the delivery log
	// lines (POSTIE_LOG_PII); off, the recipients are counted and the replies' addresses masked.
	LogPII bool
	// Metrics counts the outcomes, the delivery latency and the breaker's state; nil counts
	// nothing.
	Metrics *metrics.Metrics
}

// Engine runs the delivery cycle. Create it with New and start it with Run.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	breaker *breaker
	leases  leaseSet
}

// New returns an engine, filling defaults into cfg.
func New(cfg Config) *Engine {
	if cfg.Lease <= 0 {
		cfg.Lease = 60 * time.Second
	}
	if cfg.BreakerMin <= 0 {
		cfg.BreakerMin = 2 * time.Second
	}
	if cfg.BreakerMax < cfg.BreakerMin {
		cfg.BreakerMax = max(cfg.BreakerMin, 2*time.Minute)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Errors = errtrack.OrLog(cfg.Errors, cfg.Logger)
	streams := map[string]StreamConfig{}
	for _, name := range store.Streams {
		sc := cfg.Streams[name]
		if sc.Concurrency <= 0 {
			sc.Concurrency = 8
		}
		if sc.Batch <= 0 {
			sc.Batch = defaultBatch
		}
		streams[name] = sc
	}
	cfg.Streams = streams
	e := &Engine{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "delivery"),
		breaker: &breaker{min: cfg.BreakerMin, max: cfg.BreakerMax},
		leases:  leaseSet{ids: map[string]struct{}{}},
	}
	if cfg.Metrics != nil {
		cfg.Metrics.Breaker(cfg.Transport.Name(), e.breaker.state)
	}
	return e
}

// Run delivers until ctx is cancelled, then stops claiming, waits up to ShutdownTimeout for the
// sends in flight, records their outcomes and returns the leases it still holds. It returns nil
// after a clean shutdown.
func (e *Engine) Run(ctx context.Context) error {
	// Sends get their own context: cancelling ctx stops claiming, not the sends in flight.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()

	// Small on purpose: an outcome waiting here is a message the relay has and the store does not
	// know is sent, i.e. a duplicate if the process dies now. When the writer is slower than the
	// relay, senders wait for the finisher, so delivery runs at the pace outcomes can be recorded.
	// 4 × Concurrency per stream covers a finish commit that waits behind other writes, so one
	// slow commit does not stop every sender. Much more room (2 × Batch) would let senders run
	// ahead of the store, gaining nothing end to end and leaving more messages sent but not
	// recorded, which a crash sends twice.
	pending := 0
	for _, sc := range e.cfg.Streams {
		pending += 4 * sc.Concurrency
	}
	outcomes := make(chan store.MessageFinishParams, pending)
	finished := make(chan struct{})
	// The finisher keeps retrying outcomes the store refuses (the database is unreachable) until
	// giveUp: the shutdown deadline.
	giveUp, stopTrying := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTrying()
	go func() {
		defer close(finished)
		// Two finishers: while one batch of outcomes is being committed, the next is already
		// being written, so a commit that waits for the database's CPU (accepts share it) does
		// not stop the senders. Their batches hold different messages, so neither waits for the
		// other's rows.
		var fw sync.WaitGroup
		for range 2 {
			fw.Go(func() { e.finisher(giveUp, outcomes) })
		}
		fw.Wait()
	}()
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG sync.WaitGroup
	bgWG.Add(2)
	go func() {
		defer bgWG.Done()
		every(bg, e.cfg.Lease/3, e.guarded("delivery lease renewal", e.renewLeases))
	}()
	go func() {
		defer bgWG.Done()
		every(bg, max(e.cfg.Lease/4, time.Second), e.guarded("delivery rescue", e.rescue))
	}()

	var wg sync.WaitGroup
	for _, name := range store.Streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A panic in the claimer is reported and the stream starts again.
			_ = errtrack.Supervise(ctx, e.cfg.Errors, "delivery claimer", func(ctx context.Context) error {
				e.runStream(ctx, sendCtx, name, e.cfg.Streams[name], outcomes)
				return nil
			})
		}()
	}

	<-ctx.Done()
	stopAt := time.AfterFunc(e.cfg.ShutdownTimeout, stopTrying)
	defer stopAt.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-giveUp.Done(): // the shutdown deadline (stopAt)
		e.log.Warn("shutdown timeout: cancelling sends still in flight", "timeout", e.cfg.ShutdownTimeout)
		cancelSends()
		<-done
	}
	// Every sender has handed over its outcome: record them before giving the leases back, or
	// a sent message would be released and sent again.
	close(outcomes)
	<-finished
	stopBG()
	bgWG.Wait()

	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	n, err := e.cfg.Store.MessageReleaseLeases(relCtx, store.MessageReleaseParams{Owner: e.cfg.Owner, Now: e.cfg.Now()})
	if err != nil {
		return err
	}
	if n > 0 {
		e.log.Info("returned unfinished leases", "messages", n)
	}
	return nil
}

// job is a claimed message on its way to a sender.
type job struct {
	store.ClaimedMessage
	suppressed suppressions // active suppressions among its recipients
	checked    bool         // suppressed is known (the batch lookup worked)
	probe      bool         // this send probes a relay the breaker had given up on
}

// runStream is one stream's claimer; it starts the stream's senders and returns when they are done.
//
// slots counts the room in the stream's local queue: a claim takes one slot per message asked
// for, and a sender gives a slot back once it has handed the message's outcome to the finisher
// (or dropped the message at shutdown).
func (e *Engine) runStream(ctx, sendCtx context.Context, stream string, sc StreamConfig, outcomes chan<- store.MessageFinishParams) {
	slots := make(chan struct{}, 2*sc.Batch)
	for range cap(slots) {
		slots <- struct{}{}
	}
	work := make(chan job, cap(slots))
	var senders sync.WaitGroup
	for range sc.Concurrency {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for j := range work {
				if ctx.Err() != nil {
					// Shutting down: leave the message leased; Run releases it.
					e.leases.remove(j.ID)
					slots <- struct{}{}
					continue
				}
				fin := e.deliverReported(sendCtx, j)
				errtrack.Guard(sendCtx, e.cfg.Errors, "delivery metrics", func() { e.observe(j.ClaimedMessage, fin) })
				outcomes <- fin
				slots <- struct{}{}
			}
		}()
	}
	var backlog atomic.Bool // the last claim came back full: more is due than the queue holds
	stopHandoff := func() {}
	if ac, ok := e.cfg.Store.(store.AcceptClaims); ok {
		// Messages accepted while there is room and no backlog come straight from the accept.
		h := newHandoff(e, slots, &backlog)
		fed := make(chan struct{})
		go func() {
			defer close(fed)
			// A panic ends the hand-off (claims still find the messages) but not the process.
			defer errtrack.Recover(ctx, e.cfg.Errors, "delivery hand-off")
			h.feed(ctx, work)
		}()
		unregister := ac.ClaimAtAccept(stream, h)
		stopHandoff = func() { unregister(); h.close(); <-fed }
	}
	defer func() {
		stopHandoff()
		close(work)
		senders.Wait()
	}()

	wake := e.cfg.Store.Wakeups(stream)
	log := e.log.With("stream", stream)
	for {
		// With a backlog, wait until there is room for a whole batch: one commit per Batch
		// messages, and the Batch still queued keep the senders busy while it commits. Without
		// one, claim as soon as there is any room, so that new work goes out at once.
		want := 1
		if backlog.Load() {
			want = sc.Batch
		}
		n := 0
		for n < want {
			select {
			case <-ctx.Done():
				return
			case <-slots:
				n++
			}
		}
		limit, wait := e.breaker.allow(e.cfg.Now())
		if limit == 0 {
			// The relay is unreachable: no claims until the breaker lets a probe through, and
			// a probe waits for one slot, not for room for a batch.
			backlog.Store(false)
			for range n {
				slots <- struct{}{}
			}
			sleep(ctx, min(wait, e.cfg.PollInterval))
			continue
		}
		// Take whatever other room is free, unless this is a probe (limit 1).
	grab:
		for limit < 0 && n < sc.Batch {
			select {
			case <-slots:
				n++
			default:
				break grab
			}
		}
		if limit > 0 && n > limit {
			for range n - limit {
				slots <- struct{}{}
			}
			n = limit
		}
		now := e.cfg.Now()
		claimed, err := e.cfg.Store.MessageClaim(ctx, store.MessageClaimParams{
			Owner: e.cfg.Owner, Stream: stream, Limit: n, Now: now, LeaseUntil: now.Add(e.cfg.Lease),
		})
		for range n - len(claimed) {
			slots <- struct{}{}
		}
		if limit == 1 && len(claimed) == 0 {
			e.breaker.probeDone()
		}
		if err != nil {
			backlog.Store(false)
			if ctx.Err() == nil {
				log.Error("claiming messages failed; retrying", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for _, j := range e.jobs(ctx, claimed, limit == 1) {
			work <- j
		}
		backlog.Store(limit < 0 && len(claimed) == n)
		if len(claimed) < n {
			e.idle(ctx, stream, wake)
		}
	}
}

// jobs registers claimed messages as leased and looks up their recipients' suppressions in one
// query.
func (e *Engine) jobs(ctx context.Context, claimed []store.ClaimedMessage, probe bool) []job {
	if len(claimed) == 0 {
		return nil
	}
	for _, c := range claimed {
		e.leases.add(c.ID)
	}
	supp, err := e.lookupSuppressions(ctx, claimed, e.cfg.Now())
	if err != nil {
		e.log.Warn("looking up suppressions failed; each message will look again", "err", err)
	}
	out := make([]job, len(claimed))
	for i, c := range claimed {
		out[i] = job{ClaimedMessage: c, suppressed: supp, checked: err == nil, probe: probe}
	}
	return out
}

// idle waits until new work may be due: a wake-up, the next scheduled message, or the poll interval.
func (e *Engine) idle(ctx context.Context, stream string, wake <-chan struct{}) {
	wait := e.cfg.PollInterval
	if next, ok, err := e.cfg.Store.MessageNextDue(ctx, stream); err == nil && ok {
		if d := next.Sub(e.cfg.Now()); d < wait {
			wait = d
		}
	}
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-t.C:
	}
}

// finisher records outcomes until in is closed, as many per store call as have piled up.
func (e *Engine) finisher(giveUp context.Context, in <-chan store.MessageFinishParams) {
	const most = 512
	batch := make([]store.MessageFinishParams, 0, most)
	for first := range in {
		batch = append(batch[:0], first)
	more:
		for len(batch) < most {
			select {
			case p, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, p)
			default:
				break more
			}
		}
		if errtrack.Guard(giveUp, e.cfg.Errors, "delivery finisher", func() { e.finish(giveUp, batch) }) {
			// Recorded or not, these messages are no longer this engine's: their leases
			// expire and the rescue returns those not recorded.
			for _, p := range batch {
				e.leases.remove(p.ID)
			}
		}
	}
}

// finish records one batch of outcomes. While the store fails (the database is unreachable), it
// retries with backoff for up to a lease time, or until giveUp ends at shutdown: an outcome
// recorded late is still right, since MessageFinish applies only where the lease is still held.
// Meanwhile senders wait for the finisher, so nothing more goes out. If it never succeeds the
// leases expire and the messages are delivered again: at least once, never lost.
func (e *Engine) finish(giveUp context.Context, batch []store.MessageFinishParams) {
	var err error
	deadline := time.Now().Add(e.cfg.Lease)
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		var n int
		n, err = e.cfg.Store.MessageFinish(context.WithoutCancel(giveUp), e.cfg.Now(), batch)
		if err == nil {
			if n < len(batch) {
				e.log.Warn("outcomes of messages whose lease another worker took over were not recorded",
					"messages", len(batch)-n)
			}
			break
		}
		if time.Now().Add(pause).After(deadline) || giveUp.Err() != nil {
			break
		}
		if pause == 100*time.Millisecond {
			e.log.Warn("recording delivery outcomes failed; retrying", "messages", len(batch), "err", err)
		}
		select {
		case <-time.After(pause):
		case <-giveUp.Done():
		}
	}
	if err != nil {
		ids := make([]string, len(batch))
		for i, p := range batch {
			ids[i] = p.ID
		}
		e.log.Error("recording delivery outcomes failed; the messages will be delivered again when their lease expires",
			"messages", ids, "err", err)
		e.cfg.Errors.Error(context.WithoutCancel(giveUp), "delivery finisher", err)
	}
	for _, p := range batch {
		e.leases.remove(p.ID)
	}
}

// guarded is fn with a panic reported and stopped: one tick of a background loop fails alone.
func (e *Engine) guarded(where string, fn func(context.Context)) func(context.Context) {
	return func(ctx context.Context) { errtrack.Guard(ctx, e.cfg.Errors, where, func() { fn(ctx) }) }
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
	}
}

// renewLeases extends the leases of messages still being worked on (every Lease/3).
func (e *Engine) renewLeases(ctx context.Context) {
	ids := e.leases.list()
	if len(ids) == 0 {
		return
	}
	n, err := e.cfg.Store.MessageRenewLeases(ctx, store.MessageRenewParams{
		Owner: e.cfg.Owner, IDs: ids, Until: e.cfg.Now().Add(e.cfg.Lease),
	})
	switch {
	case err != nil:
		if ctx.Err() == nil {
			e.log.Error("renewing leases failed", "messages", len(ids), "err", err)
		}
	case n < len(ids):
		e.log.Debug("some leases were not renewed (finished meanwhile, or taken over)", "renewed", n, "held", len(ids))
	}
}

// rescue returns expired leases (of dead workers) to queued.
func (e *Engine) rescue(ctx context.Context) {
	ids, err := e.cfg.Store.MessageRescue(ctx, e.cfg.Now())
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("rescuing expired leases failed", "err", err)
		}
		return
	}
	if len(ids) > 0 {
		e.log.Warn("took over messages whose lease expired", "messages", len(ids), "first", ids[0])
	}
}

// leaseSet is the ids of the messages this engine holds between claim and recorded outcome.
type leaseSet struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (s *leaseSet) add(id string) {
	s.mu.Lock()
	s.ids[id] = struct{}{}
	s.mu.Unlock()
}

func (s *leaseSet) remove(id string) {
	s.mu.Lock()
	delete(s.ids, id)
	s.mu.Unlock()
}

func (s *leaseSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.ids))
	for id := range s.ids {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
