package app

import (
	"log/slog"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/inbound"
)

// newSES is the receiver of SES notifications (POST /v1/inbound/ses): nil, which refuses them
// all, unless POSTIE_SES_TOPIC_ARNS names topics and the store keeps an inbound area (p).
func newSES(cfg config.Config, p *inbound.Processor, log *slog.Logger) *inbound.SES {
	topics := cfg.TopicARNs()
	if len(topics) == 0 || p == nil {
		return nil
	}
	return inbound.NewSES(inbound.SESConfig{Processor: p, TopicARNs: topics, Endpoint: cfg.SNSEndpoint, Logger: log})
}
