package driverkit

import (
	"io/fs"
	"strconv"
	"strings"
)

// LatestMigration is the highest version among the goose migrations in fsys's migrations/
// directory (files named 00015_inbound.sql), 0 when there is none.
func LatestMigration(fsys fs.FS) int64 {
	entries, _ := fs.ReadDir(fsys, "migrations")
	var latest int64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseInt(num, 10, 64); ok && err == nil && strings.HasSuffix(e.Name(), ".sql") {
			latest = max(latest, v)
		}
	}
	return latest
}
