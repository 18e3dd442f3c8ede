// Package smtp is postie's relay transport: it hands each message to one configured SMTP relay
// (a smarthost such as Postfix, SES, Mailgun or a local MTA) over a small pool of reused
// connections, and classifies every failure into a *transport.Error the delivery engine can act on.
//
// # Why go-smtp and not go-mail
//
// go-mail's client sends RCPT for every recipient
// and fails the whole message on the first refusal, and it does not return the reply to the final
// "." of DATA. postie needs both: a per-recipient RCPT result (so one unknown mailbox does not fail
// a message to the others, RFC 5321 §4.5.3.1.10 and email-rules §2.3) and the DATA reply text,
// which carries the relay's queue id ("250 2.0.0 Ok: queued as 1A2B3C"). The go-smtp client
// (github.com/emersion/go-smtp) exposes Mail, Rcpt and Data as separate calls, returns every
// refusal as *smtp.SMTPError with the code, enhanced code and text, and gives the final reply
// through DataCommand.CloseWithResponse.
//
// # The send cycle
//
// Send takes one of Config.Pool slots (a semaphore; callers beyond it wait, or give up when ctx
// ends). It then checks out a connection: the most recently used idle one, or a new one: dial,
// greeting, EHLO, STARTTLS (or an implicit TLS handshake first), EHLO again, AUTH. The
// transaction is MAIL, one RCPT per recipient, DATA (pipelined when the relay allows, see below).
// A connection goes back to the pool unless it
// broke at the protocol level, received a 421, or has carried Config.MaxPerConn messages (then it
// is closed with QUIT in the background and the next checkout dials). A connection put back in
// the pool arms a timer (time.AfterFunc, no goroutine until it fires): still idle
// Config.IdleTimeout later (default 30 s, ?idle_timeout=), it is taken out of the pool and closed
// with QUIT, so an idle node holds no relay connections. A connection being closed with QUIT
// holds a slot until the relay has closed its end after the 221, so the relay, which counts a
// connection until then, never sees more than Pool. A checkout disarms the timer; Close disarms
// every timer, quits the idle connections and waits for the expiries and QUITs still running. A
// checkout also drops (without QUIT), as a safety net, any connection whose last use is older than
// IdleTimeout by Config.Now.
//
// # 8-bit bodies
//
// MAIL carries BODY=8BITMIME when the relay offers it. A relay that does not may be given
// 7-bit bodies only (RFC 6152), so a message with 8-bit parts (SMTP submissions may have them;
// postie's own MIME is 7-bit) goes re-encoded by mail.SevenBit: 8-bit text parts as
// quoted-printable, other 8-bit parts as base64, their Content-Transfer-Encoding changed to
// match. Header fields are sent as they are: UTF-8 in a header needs SMTPUTF8 (RFC 6532).
//
// # Reuse without RSET
//
// DESIGN.md says pooled connections are "reused with RSET". A pooled connection goes
// straight to the next MAIL instead, which is equivalent for the relay's state: RFC 5321 §3.3 ends a mail transaction with the reply to the final "." and
// §4.1.1.4 says the server then clears its buffers and state tables, so after a completed
// transaction the session is in the state RSET would put it in (§4.1.1.5: RSET aborts the
// current transaction and discards its sender, recipients and data; the session itself is not
// changed). An RSET there would only cost a round trip per message: on a warm connection a
// message costs four (MAIL, RCPT, DATA, the body). RSET is sent when it changes something: a
// connection whose transaction was left open (MAIL accepted but every RCPT refused, or DATA
// refused) is reset with RSET and EHLO before its next use, and dropped for the next one if that
// fails.
//
// A pooled connection may have died while it sat idle; when its MAIL meets a closed connection or
// a 421 (what relays send when they close an idle connection), nothing of the message was
// accepted, so Send dials once more and sends over the new connection. That redial is invisible
// to the caller: no error, no attempt spent. If the new connection fails too, the error is
// classified as below.
//
// # Pipelining
//
// When the relay offers PIPELINING (RFC 2920) and Config.Lockstep (?pipelining=off) is not set,
// MAIL, every RCPT and DATA leave in one write and their replies are read in order; the body and
// the final "." follow the 354 in a second write: two round trips per message instead of three
// plus one per recipient. It matters because a connection spends most of a message waiting for
// replies, and both ends pay for every wake-up. The commands and their parameters are the ones go-smtp's Mail and
// Rcpt would send, and every reply is classified as below; a refused MAIL still has the replies
// to the RCPT and DATA behind it read, and a 354 after every recipient was refused is answered
// with a lone "." (RFC 2920 §3.1), so the connection stays in step and is reused. Between
// transactions nothing is buffered on either side, so go-smtp's client takes the connection back
// for RSET, EHLO and QUIT. A relay may hold its replies until it has read the whole group (RFC
// 2920 §3.2), so a reply may take a CommandTimeout for every command still unanswered. A message
// to more than 100 recipients goes one command at a time: the group is written before any reply
// is read, and RFC 2920 §3.1 wants it to fit the TCP window. The replies of a pipelined group are
// read by a reader of our own (readResponse). CHUNKING (BDAT, RFC 3030), one round trip, is not
// used.
//
// # Bounded replies
//
// Everything the relay sends is read through a replyLimit (reply.go), under go-smtp's client,
// the pipelined reader and the plaintext part of STARTTLS alike: a reply line may have 2,000
// octets (RFC 5321 §4.5.3.1.5 allows 512, which real relays exceed; go-smtp takes 2,000 too), a
// reply 300 lines and 64 KiB. A relay, or anyone on the path before STARTTLS, that sends more
// ("220-" forever, or a line without end) gets a protocol error: the connection is closed at once
// and the read costs at most those bounds, not memory until the command timeout. The failure is
// one of the connection, classified as below: Unreachable up to MAIL (the message keeps its
// attempts), Temporary after.
//
// Every command runs under Config.CommandTimeout (go-smtp's Client.CommandTimeout), the message
// body and the reply to the final "." under Config.DataTimeout (RFC 5321 §4.5.3.2 asks for
// per-command timeouts, never one for the whole transaction). When ctx ends first the connection
// is closed under the command, so Send returns promptly.
//
// # Classification (email-rules §2.3)
//
//   - Anything that fails before MAIL (dial, greeting, EHLO, STARTTLS missing or failing, TLS
//     handshake, AUTH, even a 535, and timeouts) is Unreachable: the relay is down or
//     misconfigured, and the message must not burn an attempt on it. A network failure while
//     MAIL itself is pending counts the same way, since nothing of the message was accepted yet.
//   - 421 at any stage is Throttle, and the connection is closed (the server is closing it).
//   - Otherwise 4xx is Temporary and 5xx is Permanent, by first digit only (RFC 5321 §4.2).
//   - A lost connection or timeout after MAIL was accepted is Temporary (RFC 5321 §3.8: as if
//     451). When it happens after the whole body and the final "." were written, while waiting
//     for the reply, the Text says "connection lost after DATA: possible duplicate", because the
//     relay may have taken the message (RFC 1047).
//   - RCPT is sent for every recipient. If at least one is accepted the message goes out to those
//     and Result.Rejected lists the others; if none is, Send returns the first refusal, Temporary
//     when any refusal was 4xx and Permanent otherwise.
//
// The errors and the Config's String form never contain the password.
//
// # go-smtp details this package relies on
//
// go-smtp v0.25 has no StartTLS method on an existing Client, only NewClientStartTLS, which
// introduces itself as "localhost" with its own 5-minute timeouts and keeps the TLS connection to
// itself. So the plaintext part of STARTTLS (greeting, EHLO with Config.Helo, STARTTLS, each under
// Config.CommandTimeout) is done here, and go-smtp's client starts on the encrypted connection,
// reading the relay's greeting again from a replay. A relay that sends anything after its 220 to
// STARTTLS is refused (RFC 3207 §6: it may be an injection).
//
// The message body is not written through go-smtp's DATA writer, textproto's dot writer, which
// handles every byte on its own, which is slow for a whole message: it is
// dot-stuffed here in bulk (RFC 5321 §4.5.2; a message that needs no stuffing is not copied) and
// written to the connection go-smtp speaks over, and closing go-smtp's writer adds the final
// CRLF "." CRLF and reads the reply. The bytes on the wire are the same. Writes are held until
// the next read (see trackConn), so a body goes out in one write.
//
// Without PIPELINING the transaction goes through go-smtp's Mail, Rcpt and Data.
//
// go-smtp's Reset forgets the EHLO, so resetting an open transaction costs RSET plus EHLO;
// go-smtp has no way to send a bare RSET.
package smtp
