package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The rules below are the parts of the Store contract that do not depend on the database: both
// drivers call them, so that the conformance suite's cases cannot pass on one driver by accident.

// TemplateHead is what a driver knows of a template name inside the transaction that changes it:
// its latest version (deleted versions included) and that version's origin.
type TemplateHead struct {
	Live   bool // the name has a version and is not deleted
	Latest int  // 0 when the name was never stored
	Origin string
}

// CheckTemplate checks the content of a TemplatePut before anything is written.
func CheckTemplate(t Template) error {
	if t.Name == "" || t.Origin == "" {
		return errors.New("TemplatePut needs a Name and an Origin")
	}
	if len(t.Schema) > 0 && !json.Valid(t.Schema) {
		return fmt.Errorf("template %s: the schema is not JSON", t.Name)
	}
	return nil
}

// NextVersion returns the version a put of p stores under a name whose head is h, or ErrConflict
// when the name is live with another origin (see TemplatePutParams.AnyOrigin).
func (h TemplateHead) NextVersion(p TemplatePutParams) (int, error) {
	if h.Live && h.Origin != p.Template.Origin && !p.AnyOrigin {
		return 0, fmt.Errorf("template %s is managed by origin %q, not %q: %w", p.Template.Name, h.Origin, p.Template.Origin, ErrConflict)
	}
	return h.Latest + 1, nil
}

// CheckDelete returns ErrNotFound or ErrConflict when p may not delete a name whose head is h;
// the checks for messages and templates still using it are the driver's (TemplateInUse,
// TemplateIsLayout).
func (h TemplateHead) CheckDelete(p TemplateDeleteParams) error {
	switch {
	case !h.Live:
		return fmt.Errorf("template %s: %w", p.Name, ErrNotFound)
	case h.Origin != p.Origin && !p.AnyOrigin:
		return fmt.Errorf("template %s is managed by origin %q, not %q: %w", p.Name, h.Origin, p.Origin, ErrConflict)
	}
	return nil
}

// TemplateInUse is the conflict of deleting template name while message msgID, made from it, waits
// to be sent.
func TemplateInUse(name, msgID string) error {
	return fmt.Errorf("template %s is used by %s, which is waiting to be sent (scheduled, queued or deferred): %w",
		name, msgID, ErrConflict)
}

// TemplateIsLayout is the conflict of deleting template name while template user wraps itself in it.
func TemplateIsLayout(name, user string) error {
	return fmt.Errorf("template %s is the layout of template %s: %w", name, user, ErrConflict)
}

// DecodeTemplateJSON fills t's Schema and Locales from their stored JSON (empty: none).
func DecodeTemplateJSON(t *Template, schema, locales []byte) error {
	if len(schema) > 0 {
		t.Schema = json.RawMessage(schema)
	}
	if len(locales) > 0 {
		if err := json.Unmarshal(locales, &t.Locales); err != nil {
			return fmt.Errorf("template %s v%d: decoding locales: %w", t.Name, t.Version, err)
		}
	}
	return nil
}

// CheckSuppression returns s with its Email lowercased and trimmed, or an error when it lacks an
// Email, a Reason or a CreatedAt (see SuppressionUpsert).
func CheckSuppression(s Suppression) (Suppression, error) {
	s.Email = strings.ToLower(strings.TrimSpace(s.Email))
	switch {
	case s.Email == "":
		return s, errors.New("suppression without an email")
	case s.Reason == "":
		return s, fmt.Errorf("suppression of %s: no reason", s.Email)
	case s.CreatedAt.IsZero():
		return s, fmt.Errorf("suppression of %s: no CreatedAt", s.Email)
	}
	return s, nil
}
