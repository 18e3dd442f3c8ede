// Package metrics owns postie's Prometheus metrics: every collector with its name and help text,
// one registry per node (never the global default one, so that many nodes can run in one test
// process), and the /metrics handler. A nil *Metrics counts nothing: every method is a no-op on
// it, which is what POSTIE_METRICS=false gives the rest of postie.
//
// Labels are bounded: a route pattern, a method, a status, a stream, a transport name, an
// outcome. Never an id, an address or a raw path.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of postie_messages_total.
const (
	Accepted   = "accepted"
	Sent       = "sent"
	Deferred   = "deferred"
	Failed     = "failed"
	Bounced    = "bounced"
	Complained = "complained"
	Suppressed = "suppressed"
)

// Breaker states of postie_transport_breaker_state.
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// Metrics holds one node's collectors. Its methods are safe for concurrent use, and no-ops on
// a nil *Metrics.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	messages        *prometheus.CounterVec
	deliveryLatency *prometheus.HistogramVec

	sqliteGroup  prometheus.Histogram
	sqliteCommit prometheus.Histogram

	mu       sync.Mutex
	breakers map[string]func() int // transport name → its breaker's state
	pools    []func() (inUse, open int)
	queue    *queueCollector
}

// New returns the collectors of one node, registered on a registry of their own together with
// the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postie_http_requests_total",
			Help: "HTTP requests answered by the API, by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "postie_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postie_messages_total",
			Help: "Messages by stream, transport and outcome: accepted (stored by a way in; transport is empty), " +
				"then per delivery attempt sent, deferred, failed or suppressed, and later bounced or complained " +
				"(from the reports that come back).",
		}, []string{"stream", "transport", "outcome"}),
		deliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "postie_delivery_latency_seconds",
			Help: "Time from a message's acceptance (or its scheduled time) to the relay's 250 reply, by stream.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600,
				24 * 3600},
		}, []string{"stream"}),
		sqliteGroup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "postie_sqlite_commit_group_size",
			Help:    "Writes committed together by the SQLite writer's group commit, per commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		sqliteCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "postie_sqlite_commit_seconds",
			Help:    "Time the SQLite writer took to run and commit one group of writes.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		breakers: map[string]func() int{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.messages, m.deliveryLatency, m.sqliteGroup, m.sqliteCommit,
		(*funcCollector)(m),
	)
	return m
}

// Registry is the node's registry (for tests that gather it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or OpenMetrics) format; on a nil
// *Metrics it answers 404, as if there were no such page.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request counts one answered HTTP request. route is the mux pattern ("POST /v1/messages") or
// a fixed word when none matched; never the raw path.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// Messages counts n messages (or recipients of a split message) of stream reaching outcome on
// transport ("" before a transport is chosen: accepted).
func (m *Metrics) Messages(stream, transport, outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.messages.WithLabelValues(stream, transport, outcome).Add(float64(n))
}

// Delivered records the time from acceptance to the relay's acceptance of a message of stream.
func (m *Metrics) Delivered(stream string, latency time.Duration) {
	if m == nil {
		return
	}
	m.deliveryLatency.WithLabelValues(stream).Observe(max(latency, 0).Seconds())
}

// SQLiteCommit records one group commit of the SQLite writer: how many writes it held and how
// long it took. Its signature is sqlite.Options.OnCommit's.
func (m *Metrics) SQLiteCommit(writes int, d time.Duration) {
	if m == nil {
		return
	}
	m.sqliteGroup.Observe(float64(writes))
	m.sqliteCommit.Observe(d.Seconds())
}

// Breaker makes postie_transport_breaker_state{transport} read state (BreakerClosed,
// BreakerHalfOpen or BreakerOpen) at each scrape.
func (m *Metrics) Breaker(transport string, state func() int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.breakers[transport] = state
	m.mu.Unlock()
}

// Pool makes postie_smtp_connections_in_use and _open read stats at each scrape (summed over
// the pools registered).
func (m *Metrics) Pool(stats func() (inUse, open int)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.pools = append(m.pools, stats)
	m.mu.Unlock()
}

var (
	descBreaker = prometheus.NewDesc("postie_transport_breaker_state",
		"The delivery circuit breaker of a transport: 0 closed (delivering), 1 half-open (probing the relay), "+
			"2 open (the relay is unreachable; nothing is claimed).", []string{"transport"}, nil)
	descPoolInUse = prometheus.NewDesc("postie_smtp_connections_in_use",
		"Relay connections taken by a send (or being closed), out of the pool's ?pool= size.", nil, nil)
	descPoolOpen = prometheus.NewDesc("postie_smtp_connections_open",
		"Relay connections open: in use plus idle in the pool.", nil, nil)
)

// funcCollector reads the breakers, pools and cached queue statistics at scrape time, all from
// memory.
type funcCollector Metrics

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBreaker
	ch <- descPoolInUse
	ch <- descPoolOpen
	describeQueue(ch)
}

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	breakers := make(map[string]func() int, len(c.breakers))
	for k, v := range c.breakers {
		breakers[k] = v
	}
	pools := append([]func() (int, int)(nil), c.pools...)
	q := c.queue
	c.mu.Unlock()
	for name, state := range breakers {
		ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, float64(state()), name)
	}
	if len(pools) > 0 {
		var inUse, open int
		for _, p := range pools {
			i, o := p()
			inUse, open = inUse+i, open+o
		}
		ch <- prometheus.MustNewConstMetric(descPoolInUse, prometheus.GaugeValue, float64(inUse))
		ch <- prometheus.MustNewConstMetric(descPoolOpen, prometheus.GaugeValue, float64(open))
	}
	if q != nil {
		q.collect(ch)
	}
}
