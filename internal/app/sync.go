package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/audience/dbsync"
	"github.com/postie/postie/internal/store"
)

// syncPoll is how often a node looks for due sync sources.
const syncPoll = 5 * time.Second

// NewSyncer builds the sync of application databases on st, writing contacts through contacts
// (the audience service) and leasing sources as owner.
func NewSyncer(st store.Store, contacts *audience.Service, owner string, log *slog.Logger) *dbsync.Syncer {
	return dbsync.New(dbsync.Config{Store: st, Contacts: contacts, Owner: owner, Logger: log})
}

// CLIOwner names a command-line run in the leases it takes (sync --once).
func CLIOwner(cmd string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%s/%d", host, cmd, os.Getpid())
}

// runSync runs the due sync sources until ctx ends.
func (a *App) runSync(ctx context.Context) {
	a.syncer.Run(ctx, syncPoll)
}
