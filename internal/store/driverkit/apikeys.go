package driverkit

import (
	"encoding/json"

	"github.com/postie/postie/internal/store"
)

// APIKeyLists encodes a key's scopes and sender domains for their JSON columns: arrays, never
// null (an empty list reads back as nil).
func APIKeyLists(k store.APIKey) (scopes, domains string, err error) {
	b, err := json.Marshal(nonNilSlice(k.Scopes))
	if err != nil {
		return "", "", err
	}
	d, err := json.Marshal(nonNilSlice(k.SenderDomains))
	if err != nil {
		return "", "", err
	}
	return string(b), string(d), nil
}
