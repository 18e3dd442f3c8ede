package audience_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/store"
)

// A contact is .contact with its fields and attributes; numbers keep their decimals.
func TestContactData(t *testing.T) {
	t.Parallel()
	c := store.Contact{ID: "ctc_1", Email: "Ann@Example.com", Name: "Ann", Locale: "ko", Timezone: "Asia/Seoul",
		ExternalID: "u-1", Attributes: json.RawMessage(`{"plan":"pro","credit":10.50,"tags":["a"]}`)}
	want := map[string]any{"id": "ctc_1", "email": "Ann@Example.com", "name": "Ann", "locale": "ko",
		"timezone": "Asia/Seoul", "external_id": "u-1",
		"attributes": map[string]any{"plan": "pro", "credit": json.Number("10.50"), "tags": []any{"a"}}}
	if diff := cmp.Diff(want, audience.ContactData(c)); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	empty := audience.ContactData(store.Contact{ID: "ctc_2"})
	if a, ok := empty["attributes"].(map[string]any); !ok || len(a) != 0 {
		t.Errorf("attributes of a contact without any: %#v", empty["attributes"])
	}
}
