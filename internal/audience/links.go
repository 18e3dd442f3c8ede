package audience

import (
	"strings"
	"time"

	"github.com/postie/postie/internal/render"
)

// Links makes the public links of postie's audience pages (package web serves them under
// /u/): signed tokens under the node's public base URL. It is safe for concurrent use.
type Links struct {
	keys *Keys
	base string // no trailing slash
}

// NewLinks returns the links of keys under baseURL (POSTIE_PUBLIC_URL).
func NewLinks(keys *Keys, baseURL string) *Links {
	return &Links{keys: keys, base: strings.TrimRight(baseURL, "/")}
}

// Keys returns the keys the links are signed with.
func (l *Links) Keys() *Keys { return l.keys }

// URL is the page of a token.
func (l *Links) URL(t Token) string { return l.base + "/u/" + l.keys.Seal(t) }

// BroadcastLinks implements message.Linker: the one-click unsubscribe link of recipient for
// the message (leaving listID, or all broadcast mail when it is ""), and their preferences
// page. The tokens never expire: an unsubscribe link must work long after the send.
func (l *Links) BroadcastLinks(recipient, listID, msgID string) render.Links {
	return render.Links{
		UnsubscribeURL: l.URL(Token{Purpose: PurposeUnsubscribe, Address: recipient, ListID: listID, MessageID: msgID}),
		PreferencesURL: l.URL(Token{Purpose: PurposePreferences, Address: recipient, ListID: listID, MessageID: msgID}),
	}
}

// ConfirmURL is the double opt-in confirmation link of a contact's pending subscription to a
// list, valid ConfirmValidity from now.
func (l *Links) ConfirmURL(contactID, address, listID string, now time.Time) string {
	return l.URL(Token{Purpose: PurposeConfirm, ContactID: contactID, Address: address, ListID: listID,
		Expires: now.Add(ConfirmValidity)})
}
