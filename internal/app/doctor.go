package app

import (
	"context"
	"time"

	"github.com/postie/postie/internal/doctor"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/sqlite"
	"github.com/postie/postie/internal/transport/smtp"
)

// DoctorParts are the concrete drivers and relay transport postie doctor checks against.
func DoctorParts() doctor.Parts {
	return doctor.Parts{
		LatestMigration: map[string]int64{"sqlite": sqlite.LatestMigration(), "postgres": postgres.LatestMigration()},
		MinFreeBytes:    sqlite.DefaultMinFreeBytes,
		ProbeRelay:      probeRelay,
	}
}

func probeRelay(ctx context.Context, smtpURL string, timeout time.Duration) (doctor.RelayProbe, error) {
	r, err := smtp.ProbeURL(ctx, smtpURL, timeout)
	return doctor.RelayProbe{Addr: r.Addr, TLS: r.TLS, Auth: r.Auth}, err
}

// Backup copies the SQLite database at path to dest while postie may be running (see
// sqlite.Backup).
func Backup(ctx context.Context, path, dest string) (sqlite.BackupResult, error) {
	return sqlite.Backup(ctx, path, dest)
}
