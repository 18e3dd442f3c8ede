package sqlite

// The statements of the segments area (filter.go). A filter's own statement is assembled by
// driverkit.FilterWhere for each filter.
const (
	qAttributeGet    = `SELECT type, created_at FROM attributes WHERE name = ?`
	qAttributeInsert = `INSERT INTO attributes (name, type, created_at) VALUES (?, ?, ?)`
	qAttributeList   = `SELECT name, type, created_at FROM attributes ORDER BY name`
	qAttributeDelete = `DELETE FROM attributes WHERE name = ?`

	segmentColumns = `id, name, filter, created_at, updated_at`
	qSegmentInsert = `INSERT INTO segments (` + segmentColumns + `) VALUES (?, ?, ?, ?, ?)`
	qSegmentGet    = `SELECT ` + segmentColumns + ` FROM segments WHERE id = ?`
	qSegmentByName = `SELECT id FROM segments WHERE name = ?`
	qSegmentList   = `SELECT ` + segmentColumns + ` FROM segments ORDER BY id`
	qSegmentUpdate = `UPDATE segments SET name = ?2, filter = ?3, updated_at = ?4 WHERE id = ?1`
	qSegmentDelete = `DELETE FROM segments WHERE id = ?`

	// The columns scanSegmentContact reads; the caller adds WHERE, ORDER BY and LIMIT.
	qSegmentContactsSelect = `SELECT id, email, email_key, external_id, name, locale, timezone, attributes,
		last_active_at, created_at, updated_at FROM contacts`
)
