// Package message is the one front door for mail: it turns requests into stored messages.
// Every way in — the HTTP API today; campaigns, event triggers, SMTP submission and the console
// next — creates messages through a Service, so limits, validation and idempotency cannot drift
// apart between them.
//
// A Request goes down one path: validate the fields, render the content (from a stored template
// through the catalog, from a template the caller has already resolved, or as given), build the
// MIME (internal/mail), decide status, due time, expiry and attempts, and write the group of
// messages in one transaction through the store (MessagesAccept), with the idempotency record
// when there is one. A request whose MIME is already built (SMTP submission) hands it in as Raw
// with its envelope; only the checks that apply to a finished message are made.
//
// Failures are domain errors: an *Error with a Kind (invalid, too large, not found, conflict,
// unavailable) and the Problems of the request, each naming its field by a path relative to the
// request (to[0], data/order/id, attachments[2].content). Callers word them for their own
// protocol: httpapi turns them into problem+json and status codes in one function.
//
// The callers coming next shape the API:
//   - Campaigns create messages lazily, a few thousand ahead of their send rate, each recipient
//     rendered from the run's compiled template: a Request with a Renderer renders without the
//     catalog look-up, and Compose and Store let a chunk be built and then written as one group.
//   - SMTP submission answers 250 only after the durable commit: Accept with a Raw request.
//   - The HTTP API decodes JSON on its side and converts it into Requests without copying bodies
//     or attachments; Accept releases each request's attachment octets as soon as its MIME is
//     built, and clears each request once composed, so a large batch does not hold them twice.
package message
