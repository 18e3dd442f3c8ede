package mail

import "strings"

// MessageIDOf returns the postie message id (msg_…) that a Message-ID header postie generated
// names: "<{26 id digits}.{8 base32 digits}@{domain}>", angle brackets optional, any case (some
// systems change the case of what they quote back). ok is false for any other Message-ID. The
// header alone proves nothing: the caller checks it against the message's stored Message-ID.
func MessageIDOf(header string) (msgID string, ok bool) {
	h := strings.TrimSpace(header)
	h = strings.TrimSuffix(strings.TrimPrefix(h, "<"), ">")
	at := strings.LastIndexByte(h, '@')
	if at < 0 {
		return "", false
	}
	local := strings.ToLower(h[:at])
	digits, random, found := strings.Cut(local, ".")
	if !found || len(digits) != verpIDLen || len(random) != 8 || at == len(h)-1 {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if strings.IndexByte("0123456789abcdefghjkmnpqrstvwxyz", digits[i]) < 0 {
			return "", false
		}
	}
	for i := 0; i < len(random); i++ {
		if c := random[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return "", false
		}
	}
	return "msg_" + digits, true
}
