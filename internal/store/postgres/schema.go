package postgres

import "github.com/postie/postie/internal/store/driverkit"

// LatestMigration is the version of the newest embedded migration: the schema version this
// binary brings a database to (postie doctor compares it with the database's).
func LatestMigration() int64 { return driverkit.LatestMigration(migrations) }
