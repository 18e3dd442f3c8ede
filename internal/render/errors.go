package render

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is every compile, validation and render failure that is the template's or the data's
// fault. The HTTP layer turns it into a 422 naming Field and Path.
//
//   - Field is the part at fault: "subject", "html", "text", "layout", "schema" or "data".
//   - Path is a JSON pointer: for data errors the location in the request ("/data/order/id"), for
//     schema errors the location in the schema ("/properties/order/type"). For render errors it
//     is filled in, best effort, when the failing action is a plain field chain such as
//     {{.data.order.id}}.
//   - Template is the template or layout whose source Line and Column refer to ("" for data and
//     schema errors). It differs from the template being compiled when the fault is in a layout.
//   - Line and Column locate the fault in that source (1-based) where Go's template parser, the
//     html/template escaper, the executor or the JSON decoder report them; 0 when unknown
//     (Go's template parser reports lines but not columns).
//   - Err is the cause when there is one worth testing with errors.Is: ErrOutputLimit,
//     ErrTimeout, context.Canceled, context.DeadlineExceeded, or the error a Layouts function
//     returned. A render stopped by the caller's context is not the template's fault: check
//     errors.Is(err, context.Canceled) before answering 422.
type Error struct {
	Field    string
	Path     string
	Template string
	Line     int
	Column   int
	Message  string
	Err      error
}

// Error formats the error as `html (order-shipped line 3, column 7): map has no entry for key "id"`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	if e.Path != "" {
		b.WriteString(" ")
		b.WriteString(e.Path)
	}
	if e.Template != "" || e.Line > 0 {
		b.WriteString(" (")
		b.WriteString(e.Template)
		if e.Line > 0 {
			if e.Template != "" {
				b.WriteString(" ")
			}
			b.WriteString("line ")
			b.WriteString(strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(", column ")
				b.WriteString(strconv.Itoa(e.Column))
			}
		}
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Errors is several errors at once, for example every schema violation of one request, or a
// broken subject and a broken html part. It is never empty when returned as an error.
type Errors []*Error

// Error joins the messages with "; ".
func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the errors, so errors.As(err, &e) with e an *Error finds the first.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// List returns the *Error values in err: the elements of an Errors, the *Error itself, or nil
// when err holds neither (a Layouts failure that was not ErrNotFound, for instance).
func List(err error) []*Error {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return nil
}

var (
	// ErrNotFound is what a Layouts function returns (or wraps) when there is no layout of that
	// name. Compile reports it as an *Error on "layout"; any other error from Layouts is returned
	// wrapped but not as an *Error, because it is not the template's fault (a database error).
	ErrNotFound = errors.New("render: not found")

	// ErrOutputLimit is the Err of a render error whose part grew past Limits.MaxOutput.
	ErrOutputLimit = errors.New("render: output limit exceeded")

	// ErrTimeout is the Err of a render error that ran past Limits.Timeout.
	ErrTimeout = errors.New("render: time limit exceeded")
)

// errorsOrNil returns nil, the only *Error, or Errors.
func errorsOrNil(es Errors) error {
	switch len(es) {
	case 0:
		return nil
	case 1:
		return es[0]
	}
	return es
}

// lineColumn converts a byte offset in text to a 1-based line and column (in bytes).
func lineColumn(text string, offset int) (line, col int) {
	if offset > len(text) {
		offset = len(text)
	}
	before := text[:offset]
	line = 1 + strings.Count(before, "\n")
	col = offset - (strings.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Message: fmt.Sprintf(format, args...)}
}
