package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/postie/postie/internal/audience/dbsync"
	"github.com/postie/postie/internal/store"
)

// syncPoll is how often a node looks for due sync sources.
const syncPoll = 5 * time.Second

// NewSyncer builds the sync of application databases on st, writing contacts through contacts
// and leasing sources as owner.
func NewSyncer(st store.Store, contacts dbsync.Contacts, owner string, log *slog.Logger) (*dbsync.Syncer, error) {
	ds, ok := st.(dbsync.Store)
	if !ok || contacts == nil {
		return nil, fmt.Errorf("the %T store keeps no contacts", st)
	}
	return dbsync.New(dbsync.Config{Store: ds, Contacts: contacts, Owner: owner, Logger: log}), nil
}

// CLIOwner names a command-line run in the leases it takes (sync --once).
func CLIOwner(cmd string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%s/%d", host, cmd, os.Getpid())
}

// runSync runs the due sync sources of every node's schedule until ctx ends.
func (a *App) runSync(ctx context.Context) {
	if a.syncer != nil {
		a.syncer.Run(ctx, syncPoll)
	}
}
