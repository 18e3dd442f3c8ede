package render

import (
	"context"
	"time"
)

// Limits bound one Render. Zero values take the defaults.
type Limits struct {
	// MaxOutput is the size limit of each rendered part in bytes (subject, html, text each);
	// default DefaultMaxOutput.
	MaxOutput int
	// Timeout bounds the whole Render; default DefaultTimeout. The context's deadline, when
	// earlier, wins.
	Timeout time.Duration
}

const (
	// DefaultMaxOutput is Limits.MaxOutput when zero: 2 MB per part.
	DefaultMaxOutput = 2 << 20
	// DefaultTimeout is Limits.Timeout when zero.
	DefaultTimeout = 2 * time.Second
	// MaxDataSize is the largest data document Validate accepts: 1 MB.
	MaxDataSize = 1 << 20
	// MaxSourceSize is the largest template part (subject, html or text source) Compile accepts.
	MaxSourceSize = 1 << 20
	// ClipWarnSize is the HTML size above which Render adds a warning: Gmail clips bodies over
	// about 102 KB (email-rules §5.7).
	ClipWarnSize = 100 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxOutput <= 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}

// checkEvery is how many budget checks pass between two looks at the clock and the context. A
// check is made on every write, every function call, every printed action and every range
// iteration, so 32 of them are microseconds at most.
const checkEvery = 32

// budget is the time budget of one render: the deadline and the caller's context, consulted
// from the output writer, from every template function and from every range iteration (see
// tick in compile.go). Go templates cannot be interrupted from outside; these checkpoints are
// where a render stops.
type budget struct {
	ctx      context.Context
	deadline time.Time // zero: none
	n        int
	err      error
}

func (b *budget) reset(ctx context.Context, deadline time.Time) {
	b.ctx, b.deadline, b.n, b.err = ctx, deadline, 0, nil
}

// check returns ErrTimeout once the deadline has passed and the context's error once it is
// done; it looks at the clock every checkEvery calls. Once it has failed it keeps failing.
func (b *budget) check() error {
	if b.err != nil {
		return b.err
	}
	b.n++
	if b.n%checkEvery != 0 {
		return nil
	}
	return b.checkNow()
}

func (b *budget) checkNow() error {
	if b.err != nil {
		return b.err
	}
	if err := b.ctx.Err(); err != nil {
		b.err = err
	} else if !b.deadline.IsZero() && time.Now().After(b.deadline) {
		b.err = ErrTimeout
	}
	return b.err
}

// limitedBuffer collects one part's output. It fails with ErrOutputLimit as soon as the output
// would pass max bytes, and with the budget's error when time is up, so that a range over
// large data stops at the size limit and a slow one at the deadline.
type limitedBuffer struct {
	buf    []byte
	max    int
	budget *budget
}

func (w *limitedBuffer) reset(max int) {
	w.buf = w.buf[:0]
	w.max = max
}

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if len(w.buf)+len(p) > w.max {
		return 0, ErrOutputLimit
	}
	if err := w.budget.check(); err != nil {
		return 0, err
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// String returns a copy of the output.
func (w *limitedBuffer) String() string { return string(w.buf) }
