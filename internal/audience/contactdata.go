package audience

import (
	"bytes"
	"encoding/json"

	"github.com/postie/postie/internal/store"
)

// ContactData is what a template sees of c as {{.contact}}: id, email, name, locale,
// timezone, external_id (each "" when unknown) and attributes (an object, empty when none;
// numbers keep their exact decimals). A contact's stored attributes are always a JSON object,
// so nothing here fails.
func ContactData(c store.Contact) map[string]any {
	attrs := map[string]any{}
	if len(c.Attributes) > 0 {
		d := json.NewDecoder(bytes.NewReader(c.Attributes))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) == nil && m != nil {
			attrs = m
		}
	}
	return map[string]any{
		"id":          c.ID,
		"email":       c.Email,
		"name":        c.Name,
		"locale":      c.Locale,
		"timezone":    c.Timezone,
		"external_id": c.ExternalID,
		"attributes":  attrs,
	}
}
