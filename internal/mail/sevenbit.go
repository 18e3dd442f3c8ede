package mail

import (
	"bytes"
	"mime"
	"strings"
)

// SevenBit re-encodes raw (an RFC 5322 message with CRLF line ends) for a relay that does not
// offer 8BITMIME (RFC 6152), which may only be given 7-bit bodies: every part whose body holds
// octets ≥ 0x80 under Content-Transfer-Encoding 8bit, binary or none is re-encoded, a text/*
// part as quoted-printable and any other as base64, and its Content-Transfer-Encoding changed
// to say so. Multipart bodies are walked part by part (preamble, delimiters and epilogue kept
// as they are), and so is the message inside a message/rfc822 part. Header fields are left as
// they are: 8-bit header fields (RFC 6532) need a relay with SMTPUTF8, which the transport
// asks for. It returns raw itself and false when no body needed re-encoding.
func SevenBit(raw []byte) ([]byte, bool) {
	if !has8bit(raw) {
		return raw, false
	}
	return sevenBitEntity(raw, 0)
}

// maxMIMEDepth bounds the nesting SevenBit follows; deeper parts are left as they are.
const maxMIMEDepth = 20

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// sevenBitEntity re-encodes one MIME entity (header, blank line, body).
func sevenBitEntity(ent []byte, depth int) ([]byte, bool) {
	if depth > maxMIMEDepth || !has8bit(ent) {
		return ent, false
	}
	head, body, ok := splitEntity(ent)
	if !ok {
		return ent, false
	}
	ctype, cte := entityFields(head)
	media, params, err := mime.ParseMediaType(ctype)
	if ctype == "" || err != nil {
		media = "text/plain" // RFC 2045 §5.2
	}
	switch {
	case strings.HasPrefix(media, "multipart/") && params["boundary"] != "":
		nb, changed := sevenBitMultipart(body, params["boundary"], depth)
		if !changed {
			return ent, false
		}
		return append(append(head, "\r\n"...), nb...), true
	case media == "message/rfc822":
		nb, changed := sevenBitEntity(body, depth+1)
		if !changed {
			return ent, false
		}
		return append(append(head, "\r\n"...), nb...), true
	}
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable", "base64":
		return ent, false // already 7-bit (an 8-bit octet there is not ours to fix)
	}
	if !has8bit(body) {
		return ent, false
	}
	// The line end closing the body belongs to what follows (a delimiter, or the end of DATA):
	// it stays as it is, outside the encoding.
	content, end := body, ""
	if c, ok := bytes.CutSuffix(body, []byte("\r\n")); ok {
		content, end = c, "\r\n"
	}
	out := withoutField(head, "Content-Transfer-Encoding")
	if strings.HasPrefix(media, "text/") {
		out = append(out, "Content-Transfer-Encoding: quoted-printable\r\n\r\n"...)
		out = appendQuotedPrintable(out, string(content))
	} else {
		out = append(out, "Content-Transfer-Encoding: base64\r\n\r\n"...)
		out = appendBase64Lines(out, content)
	}
	return append(out, end...), true
}

// splitEntity splits ent into its header section (with the CRLF ending its last field) and its
// body. ok is false when there is no blank line.
func splitEntity(ent []byte) (head, body []byte, ok bool) {
	if bytes.HasPrefix(ent, []byte("\r\n")) {
		return ent[:0:0], ent[2:], true
	}
	i := bytes.Index(ent, []byte("\r\n\r\n"))
	if i < 0 {
		return nil, nil, false
	}
	return ent[: i+2 : i+2], ent[i+4:], true
}

// entityFields returns the unfolded Content-Type and Content-Transfer-Encoding of a header
// section.
func entityFields(head []byte) (ctype, cte string) {
	for _, f := range entityHeaderFields(head) {
		name, value, ok := strings.Cut(string(f), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(strings.NewReplacer("\r\n", "", "\n", "").Replace(value))
		switch {
		case strings.EqualFold(strings.TrimSpace(name), "Content-Type"):
			ctype = value
		case strings.EqualFold(strings.TrimSpace(name), "Content-Transfer-Encoding"):
			cte = value
		}
	}
	return ctype, cte
}

// entityHeaderFields splits a header section into its fields, each with its continuation lines and
// line ends.
func entityHeaderFields(head []byte) [][]byte {
	var out [][]byte
	for len(head) > 0 {
		n := 0
		for {
			i := bytes.IndexByte(head[n:], '\n')
			if i < 0 {
				n = len(head)
				break
			}
			n += i + 1
			if n == len(head) || (head[n] != ' ' && head[n] != '\t') {
				break
			}
		}
		out = append(out, head[:n])
		head = head[n:]
	}
	return out
}

// withoutField is a copy of head without the fields called name.
func withoutField(head []byte, name string) []byte {
	out := make([]byte, 0, len(head)+64)
	for _, f := range entityHeaderFields(head) {
		n, _, _ := strings.Cut(string(f), ":")
		if !strings.EqualFold(strings.TrimSpace(n), name) {
			out = append(out, f...)
		}
	}
	return out
}

// sevenBitMultipart re-encodes the parts of a multipart body (RFC 2046 §5.1.1). The CRLF before
// each delimiter belongs to the delimiter, so each part is handed on without it.
func sevenBitMultipart(body []byte, boundary string, depth int) ([]byte, bool) {
	dash := "--" + boundary
	var out []byte
	changed := false
	start := -1 // where the current part begins, after its delimiter line
	closed := false
	for pos := 0; pos < len(body) && !closed; {
		end := bytes.IndexByte(body[pos:], '\n')
		next := len(body)
		if end >= 0 {
			next = pos + end + 1
		}
		line := strings.TrimRight(string(body[pos:next]), " \t\r\n")
		if line == dash || line == dash+"--" {
			if start >= 0 {
				part := body[start:pos]
				part = bytes.TrimSuffix(part, []byte("\r\n"))
				np, c := sevenBitEntity(part, depth+1)
				changed = changed || c
				out = append(out, np...)
				if pos > start {
					out = append(out, "\r\n"...)
				}
			} else {
				out = append(out, body[:pos]...) // the preamble
			}
			out = append(out, body[pos:next]...)
			start = next
			closed = line == dash+"--"
		}
		pos = next
	}
	if !changed {
		return body, false
	}
	if start >= 0 {
		out = append(out, body[start:]...) // the epilogue, or an unclosed last part as it was
	}
	return out, true
}
