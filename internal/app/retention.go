package app

import (
	"log/slog"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/retention"
	"github.com/postie/postie/internal/store"
)

// Retention batch sizes: a batch is one transaction. On SQLite it holds the only writer, so
// batches stay small and delivery's writes get in between them; PostgreSQL locks only the
// rows it deletes.
const (
	retentionBatchSQLite   = 200
	retentionBatchPostgres = 1000
)

// newRetention builds the purges of cfg's retention settings (POSTIE_RETAIN_*,
// POSTIE_EVENT_RETENTION), every POSTIE_RETENTION_INTERVAL.
func newRetention(cfg config.Config, st store.Store, log *slog.Logger, errs errtrack.Reporter) *retention.Service {
	batch := retentionBatchPostgres
	if db, err := cfg.Database(); err == nil && db.Driver == "sqlite" {
		batch = retentionBatchSQLite
	}
	return retention.New(retention.Config{
		Store: st, Bodies: cfg.RetainBodies, Messages: cfg.RetainMessages,
		WebhookDeliveries: cfg.RetainWebhookDeliveries, Inbound: cfg.RetainInbound, Events: cfg.EventRetention,
		Every: cfg.RetentionInterval, Batch: batch, Log: log, Errors: errs,
	})
}
