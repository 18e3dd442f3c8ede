package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store"
)

// bounceKeyName is the database secret that signs bounce addresses: generated once, shared by
// every node, so any node's inbound listener verifies what any node sent.
const bounceKeyName = "bounce_address_key"

// loadVERP returns the signer of bounce addresses, its key loaded from the database (made on
// first use).
func loadVERP(ctx context.Context, st store.Secrets, now time.Time) (*mail.VERP, error) {
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh) // crypto/rand.Read never returns an error (Go 1.24+)
	key, err := st.SecretGetOrCreate(ctx, bounceKeyName, fresh, now)
	if err != nil {
		return nil, fmt.Errorf("loading the bounce address key: %w", err)
	}
	return mail.NewVERP(key)
}

// bounceAddress is delivery.Config.BounceAddress for cfg: the recipient's bounce address at the
// bounce domain of the message's sending domain (POSTIE_BOUNCE_DOMAINS), else at
// POSTIE_BOUNCE_DOMAIN, else "" (the envelope sender stays). nil when no bounce domain is set.
func bounceAddress(cfg config.Config, v *mail.VERP) func(messageID, rcpt, envelopeFrom string) string {
	per, all, _ := cfg.BounceDomainMap() // checked by config.Validate
	if len(all) == 0 {
		return nil
	}
	fallback := strings.ToLower(cfg.BounceDomain)
	return func(messageID, rcpt, envelopeFrom string) string {
		domain := fallback
		if at := strings.LastIndexByte(envelopeFrom, '@'); at >= 0 {
			if d, ok := per[strings.ToLower(envelopeFrom[at+1:])]; ok {
				domain = d
			}
		}
		if domain == "" {
			return ""
		}
		return v.Address(messageID, rcpt, domain)
	}
}

// VERP is the signer of this node's bounce addresses, for the inbound listeners that verify
// them.
func (a *App) VERP() *mail.VERP { return a.verp }
