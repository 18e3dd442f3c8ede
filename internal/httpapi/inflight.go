package httpapi

// Bounding the memory of large requests. A message request costs a few times its body while it
// is handled (the body, the decoded attachments, the built MIME, the database driver's copy), so
// the bodies of the requests being handled at once are bounded by a budget of bytes, a weighted
// semaphore: a request takes its Content-Length from it before its body is read (a chunked body
// takes what it has read so far, as it reads) and gives it back when it has been answered. A
// request that finds the budget spent waits for room a short while, then is answered 503 with
// Retry-After. Bodies under smallBody skip the budget: they cost one comparison, and their
// memory is bounded by the number of connections.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/postie/postie/internal/inflight"
)

const (
	// smallBody is the size under which a request body does not count against the budget.
	smallBody = 64 << 10
	// chunkStep is how much of a body of unknown length (chunked) is read, and taken from the
	// budget, at a time.
	chunkStep = 1 << 20
	// busyRetryAfter is the Retry-After of a 503 for a spent budget, in seconds.
	busyRetryAfter = 2
	// defaultInflightWait is how long a request waits for room in the budget by default.
	defaultInflightWait = 2 * time.Second
)

// The body limits and read timeouts of the message routes, which are the large ones.
const (
	sendReadTimeout  = 60 * time.Second
	batchReadTimeout = 120 * time.Second
)

// largeBody returns the body limit and read timeout of a request on one of the routes whose
// bodies may be large, or limit 0 for any other.
func (s *Server) largeBody(r *http.Request) (limit int64, readTimeout time.Duration) {
	if r.Method != http.MethodPost {
		return 0, 0
	}
	switch r.URL.Path {
	case "/v1/messages":
		return s.bodyLimit, sendReadTimeout
	case "/v1/messages/batch":
		return 2 * s.bodyLimit, batchReadTimeout
	}
	return 0, 0
}

// serveLarge serves a request of a large-body route within the budget: it refuses a body over
// limit (413) before reading it, takes the body's bytes from the budget (503 when there is no
// room soon enough), and hands the body to the handler so that it is read into memory once, into
// a buffer of its exact size.
func (s *Server) serveLarge(w http.ResponseWriter, r *http.Request, limit int64, readTimeout time.Duration) {
	if r.ContentLength > limit {
		tooLarge(w, limit)
		return
	}
	// Waiting for room and reading a large body come before the answer: its write deadline
	// (the server's, from the end of the request headers) is moved past both. A small body is
	// read well within it.
	deadline := func() *http.ResponseController {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Now().Add(s.inflight.Wait() + readTimeout + s.cfg.WriteTimeout))
		return rc
	}
	if n := r.ContentLength; n >= 0 {
		if n >= smallBody {
			deadline()
			held, err := s.inflight.Acquire(r.Context(), n)
			if err != nil {
				s.busy(w, err)
				return
			}
			defer s.inflight.Release(held)
		}
		r.Body = &handOff{rd: r.Body, closer: r.Body, n: n}
		s.mux.ServeHTTP(w, r)
		return
	}
	_ = deadline().SetReadDeadline(time.Now().Add(readTimeout))
	data, held, err := s.readUnknownLength(r.Context(), r.Body, limit)
	defer s.inflight.Release(held)
	switch {
	case errors.Is(err, errTooLarge):
		tooLarge(w, limit)
		return
	case err != nil && (errors.Is(err, inflight.ErrBusy) || r.Context().Err() != nil):
		s.busy(w, err)
		return
	case err != nil:
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			writeProblem(w, http.StatusRequestTimeout, "request body read timeout")
			return
		}
		writeProblem(w, http.StatusBadRequest, "cannot read the request body: "+err.Error())
		return
	}
	r.Body = &handOff{data: data, closer: r.Body, n: int64(len(data))}
	r.ContentLength = int64(len(data))
	s.mux.ServeHTTP(w, r)
}

var errTooLarge = errors.New("request body too large")

// readUnknownLength reads a body of unknown length, up to limit octets (errTooLarge past it),
// taking each chunk's size from the budget before reading it. It returns the body and the bytes
// taken from the budget, to be released whatever the error.
func (s *Server) readUnknownLength(ctx context.Context, body io.Reader, limit int64) ([]byte, int64, error) {
	var (
		chunks [][]byte
		total  int64
		held   int64
	)
	for {
		// Chunks grow with the body, so that a small body does not cost a large buffer.
		size := min(chunkStep, max(smallBody, total))
		if held < s.inflight.Size() {
			n, err := s.inflight.Acquire(ctx, min(size, s.inflight.Size()-held))
			if err != nil {
				return nil, held, err
			}
			held += n
		}
		chunk := make([]byte, size)
		n, err := io.ReadFull(body, chunk)
		chunks = append(chunks, chunk[:n])
		total += int64(n)
		if total > limit {
			return nil, held, errTooLarge
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, held, err
		}
	}
	if len(chunks) == 1 {
		return chunks[0], held, nil
	}
	return bytes.Join(chunks, nil), held, nil
}

// handOff is a request body as the message handlers receive it. huma copies a body into its own
// buffer (io.Copy into a bytes.Buffer); handOff's WriteTo makes that one read into a buffer of
// the exact size, or, for a body already read, hands the buffer over without a copy, where a
// plain reader would grow the buffer by doubling (up to twice the body, and copies).
type handOff struct {
	rd     io.Reader // the unread body, when data is nil
	data   []byte    // a body already read
	closer io.Closer
	n      int64 // the body's length
}

func (h *handOff) Read(p []byte) (int, error) {
	if h.rd == nil {
		h.rd = bytes.NewReader(h.data)
		h.data = nil
	}
	return h.rd.Read(p)
}

func (h *handOff) Close() error { return h.closer.Close() }

// WriteTo writes the body to w, a bytes.Buffer as huma's is without a copy or regrowth.
func (h *handOff) WriteTo(w io.Writer) (int64, error) {
	buf, ok := w.(*bytes.Buffer)
	switch {
	case ok && h.data != nil && buf.Len() == 0:
		*buf = *bytes.NewBuffer(h.data) // the buffer takes over data, which nothing else holds
		h.data = nil
		return int64(buf.Len()), nil
	case ok && h.rd != nil:
		// ReadFrom asks for MinRead bytes of room before each read, the last (EOF) one too.
		buf.Grow(int(h.n) + bytes.MinRead)
		return buf.ReadFrom(h.rd)
	}
	return io.Copy(w, struct{ io.Reader }{h})
}

func tooLarge(w http.ResponseWriter, limit int64) {
	writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is too large limit=%d bytes", limit))
}

// busy answers a request that found no room in the budget (or was cancelled while waiting).
func (s *Server) busy(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(busyRetryAfter))
	w.Header().Set("Connection", "close") // the body was not read
	writeProblem(w, http.StatusServiceUnavailable,
		"the server is handling as many large requests as its memory budget (POSTIE_MAX_INFLIGHT_BYTES) allows; retry after "+
			strconv.Itoa(busyRetryAfter)+" s (with the same Idempotency-Key to be sure a message is stored once)")
	if !errors.Is(err, inflight.ErrBusy) {
		s.log.Debug("request cancelled while waiting for the in-flight budget", "err", err)
	}
}
