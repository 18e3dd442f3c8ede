package web

import (
	"net/http"
	"strings"
)

// texts are the words of the pages in one language.
type texts struct {
	Lang                                       string
	Invalid, InvalidText, Expired              string
	UnsubTitle, UnsubText, LeaveList, LeaveAll string
	LeftList, LeftAll                          string
	ConfirmTitle, ConfirmText, ConfirmButton   string
	Confirmed, Failed, FailedText              string
	Subscribed, SubscribedText                 string
	Leave, Join, Joined                        string
	BadForm, BadFormText, TooMany, TooManyText string
}

var languages = map[string]texts{
	"en": {
		Lang:           "en",
		Invalid:        "This link is not valid",
		InvalidText:    "It may have been cut short or changed. Nothing was changed.",
		Expired:        "This link has expired",
		UnsubTitle:     "Unsubscribe",
		UnsubText:      "Choose what you no longer want to receive. Transactional mail, such as receipts and password resets, still reaches you.",
		LeaveList:      "Unsubscribe from this list",
		LeaveAll:       "Unsubscribe from all marketing mail",
		LeftList:       "You are unsubscribed from this list",
		LeftAll:        "You are unsubscribed from all marketing mail",
		ConfirmTitle:   "Confirm your subscription",
		ConfirmText:    "Press the button to confirm that you want to receive this list's mail.",
		ConfirmButton:  "Confirm my subscription",
		Confirmed:      "Your subscription is confirmed",
		Failed:         "Something went wrong",
		FailedText:     "Nothing was changed. Please try again in a minute.",
		Subscribed:     "Thank you",
		Leave:          "Unsubscribe from",
		Join:           "Subscribe to",
		Joined:         "You are subscribed",
		SubscribedText: "If the list asks for a confirmation, we have sent you a message with a link: open it to confirm.",
		BadForm:        "This form is not complete",
		BadFormText:    "Give a valid email address and a list that takes subscriptions.",
		TooMany:        "Too many requests",
		TooManyText:    "Please try again later.",
	},
	"de": {
		Lang:           "de",
		Invalid:        "Dieser Link ist ungültig",
		InvalidText:    "Er wurde möglicherweise gekürzt oder verändert. Es wurde nichts geändert.",
		Expired:        "Dieser Link ist abgelaufen",
		UnsubTitle:     "Abmelden",
		UnsubText:      "Wählen Sie, was Sie nicht mehr erhalten möchten. Transaktionsmails wie Belege und Passwort-Zurücksetzungen erhalten Sie weiterhin.",
		LeaveList:      "Von dieser Liste abmelden",
		LeaveAll:       "Von allen Werbe-E-Mails abmelden",
		LeftList:       "Sie sind von dieser Liste abgemeldet",
		LeftAll:        "Sie sind von allen Werbe-E-Mails abgemeldet",
		ConfirmTitle:   "Anmeldung bestätigen",
		ConfirmText:    "Bestätigen Sie mit der Schaltfläche, dass Sie die E-Mails dieser Liste erhalten möchten.",
		ConfirmButton:  "Anmeldung bestätigen",
		Confirmed:      "Ihre Anmeldung ist bestätigt",
		Failed:         "Etwas ist schiefgegangen",
		FailedText:     "Es wurde nichts geändert. Bitte versuchen Sie es in einer Minute erneut.",
		Subscribed:     "Vielen Dank",
		Leave:          "Abmelden von",
		Join:           "Anmelden bei",
		Joined:         "Sie sind angemeldet",
		SubscribedText: "Wenn die Liste eine Bestätigung verlangt, haben wir Ihnen eine Nachricht mit einem Link geschickt: Öffnen Sie ihn zur Bestätigung.",
		BadForm:        "Das Formular ist unvollständig",
		BadFormText:    "Geben Sie eine gültige E-Mail-Adresse und eine Liste an, die Anmeldungen annimmt.",
		TooMany:        "Zu viele Anfragen",
		TooManyText:    "Bitte versuchen Sie es später erneut.",
	},
}

// pick chooses the language of a page: the contact's locale when known, else the browser's
// Accept-Language, else English.
func pick(r *http.Request, locale string) texts {
	if t, ok := languages[baseLang(locale)]; ok {
		return t
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if t, ok := languages[baseLang(tag)]; ok {
			return t
		}
	}
	return languages["en"]
}

func baseLang(tag string) string {
	l, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	l, _, _ = strings.Cut(l, "_")
	return l
}
