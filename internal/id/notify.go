package id

// Prefixes of the notify and webhook areas: application events, triggers, the actions triggers
// create, and webhook endpoints.
const (
	Event   = "evt"
	Trigger = "trg"
	Action  = "act"
	Webhook = "whk"
)
