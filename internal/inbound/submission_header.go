package inbound

import (
	"bytes"
	"fmt"
	"mime"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Header fields a submitted message may carry for postie; they are removed before the message
// is stored, so the recipients never see them.
const (
	hdrStream   = "X-Postie-Stream"    // the stream: transactional (default) or broadcast
	hdrTag      = "X-Postie-Tag"       // tags: repeatable, each a comma-separated list
	hdrMetadata = "X-Postie-Metadata-" // X-Postie-Metadata-{key}: one metadata value
	hdrPrefix   = "X-Postie-"          // any other field of this prefix is refused
)

// submitted is what submission reads from a message's header.
type submitted struct {
	from      []string // the values of the From fields
	messageID string   // the Message-ID, without angle brackets; "" when none
	stream    string
	tags      []string
	metadata  map[string]string
}

// headerProblem is a header a submitted message is refused for.
type headerProblem struct {
	field string // the header field at fault ("" for the header as a whole)
	msg   string
}

func (p *headerProblem) Error() string {
	if p.field == "" {
		return p.msg
	}
	return p.field + ": " + p.msg
}

// readSubmitted reads the header of a submitted message (CRLF line ends, checked before) and
// returns what it says for postie and the message without the X-Postie-* and Bcc fields (data
// itself when there are none). Bcc is removed because its recipients are in the envelope and
// must not be shown to the others (RFC 5322 §3.6.3). A header that is not a sequence of fields
// (RFC 5322 §2.2), or postie's fields given wrongly, is a *headerProblem.
func readSubmitted(data []byte) (submitted, []byte, error) {
	var s submitted
	var out []byte // the message without the removed fields, once one is removed
	kept := 0      // data[:kept] is accounted for in out
	line := 1
	for i := 0; i < len(data); {
		end := fieldEnd(data, i)
		if end == i+2 && data[i] == '\r' { // the empty line ending the header
			break
		}
		name, value, ok := splitField(data[i:end])
		if !ok {
			return s, nil, &headerProblem{msg: fmt.Sprintf("line %d of the header is not a header field (RFC 5322 §2.2): %.60q", line, firstLine(data[i:end]))}
		}
		line += bytes.Count(data[i:end], []byte("\r\n"))
		remove := true
		switch {
		case strings.EqualFold(name, "From"):
			s.from = append(s.from, value)
			remove = false
		case strings.EqualFold(name, "Message-Id"):
			s.messageID = strings.Trim(value, "<> \t")
			remove = false
		case strings.EqualFold(name, "Bcc"):
		case strings.EqualFold(name, hdrStream):
			if s.stream != "" {
				return s, nil, &headerProblem{field: hdrStream, msg: "given more than once"}
			}
			if s.stream = decodeWords(value); s.stream == "" {
				return s, nil, &headerProblem{field: hdrStream, msg: "empty: give transactional or broadcast"}
			}
		case strings.EqualFold(name, hdrTag):
			for t := range strings.SplitSeq(decodeWords(value), ",") {
				if t = strings.TrimSpace(t); t != "" {
					s.tags = append(s.tags, t)
				}
			}
		case len(name) >= len(hdrMetadata) && strings.EqualFold(name[:len(hdrMetadata)], hdrMetadata):
			key := name[len(hdrMetadata):]
			if key == "" {
				return s, nil, &headerProblem{field: name, msg: "name the metadata key: " + hdrMetadata + "{key}"}
			}
			if s.metadata == nil {
				s.metadata = map[string]string{}
			}
			for k := range s.metadata {
				if strings.EqualFold(k, key) {
					return s, nil, &headerProblem{field: name, msg: "given more than once"}
				}
			}
			s.metadata[key] = decodeWords(value)
		case len(name) >= len(hdrPrefix) && strings.EqualFold(name[:len(hdrPrefix)], hdrPrefix):
			return s, nil, &headerProblem{field: name, msg: "unknown: postie reads " + hdrStream + ", " + hdrTag + " and " + hdrMetadata + "{key}"}
		default:
			remove = false
		}
		if remove {
			out = append(out, data[kept:i]...)
			kept = end
		}
		i = end
	}
	if len(s.from) == 0 {
		return s, nil, &headerProblem{field: "From", msg: "required: the message has no From field (RFC 5322 §3.6)"}
	}
	if len(s.from) > 1 {
		return s, nil, &headerProblem{field: "From", msg: "given more than once: a message has exactly one From field (RFC 5322 §3.6)"}
	}
	if out == nil {
		return s, data, nil
	}
	return s, append(out, data[kept:]...), nil
}

// receivedField is the trace field an SMTP server prepends to a message it accepts (RFC 5321
// §4.4): the client's EHLO name and address, this server's name, the protocol (RFC 3848:
// ESMTPA, or ESMTPSA over TLS) and the time.
func receivedField(helo, remote, by string, tls bool, at time.Time) []byte {
	ip := "unknown"
	if host, _, err := net.SplitHostPort(remote); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			ip = a.Unmap().String()
			if a.Unmap().Is6() {
				ip = "IPv6:" + ip
			}
		}
	}
	proto := "ESMTPA"
	if tls {
		proto = "ESMTPSA"
	}
	return fmt.Appendf(nil, "Received: from %s ([%s])\r\n\tby %s (postie) with %s;\r\n\t%s\r\n",
		traceName(helo), ip, traceName(by), proto, at.Format(time.RFC1123Z))
}

// traceName is a client-given name as it may appear in a trace field: printable ASCII without
// spaces, parentheses, brackets or semicolons, at most 255 characters; "unknown" otherwise.
func traceName(n string) string {
	if n == "" || len(n) > 255 || strings.ContainsFunc(n, func(r rune) bool {
		return r <= ' ' || r > '~' || strings.ContainsRune("()[];\\\"", r)
	}) {
		return "unknown"
	}
	return n
}

// fieldEnd is the end of the header line at i with its continuation lines (those starting
// with a space or tab, RFC 5322 §2.2.3), after their final CRLF; len(data) when the data ends
// first.
func fieldEnd(data []byte, i int) int {
	for {
		j := bytes.Index(data[i:], []byte("\r\n"))
		if j < 0 {
			return len(data)
		}
		i += j + 2
		if i >= len(data) || data[i] != ' ' && data[i] != '\t' || j == 0 {
			return i
		}
	}
}

// splitField splits a header field (with its continuation lines) into its name and its value,
// unfolded and trimmed. ok is false when it is not a field: no colon, or a name that is not
// printable US-ASCII (RFC 5322 §2.2, ftext).
func splitField(f []byte) (name, value string, ok bool) {
	colon := bytes.IndexByte(f, ':')
	if colon <= 0 {
		return "", "", false
	}
	n := bytes.TrimRight(f[:colon], " \t") // obsolete WSP before the colon (RFC 5322 §4.5)
	if len(n) == 0 {
		return "", "", false
	}
	for _, c := range n {
		if c < 33 || c > 126 {
			return "", "", false
		}
	}
	v := strings.ReplaceAll(string(f[colon+1:]), "\r\n", "")
	return string(n), strings.TrimSpace(v), true
}

// firstLine is f up to its first CRLF.
func firstLine(f []byte) []byte {
	if i := bytes.Index(f, []byte("\r\n")); i >= 0 {
		return f[:i]
	}
	return f
}

// decodeWords decodes RFC 2047 encoded-words in v, or returns v as it is.
func decodeWords(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	if d, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
		return d
	}
	return v
}
