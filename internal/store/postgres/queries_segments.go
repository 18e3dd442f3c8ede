package postgres

// The statements of the segments area (filter.go). A filter's own statement is assembled by
// driverkit.FilterWhere for each filter.
const (
	qAttributeInsert = `INSERT INTO attributes (name, type, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`
	qAttributeGet    = `SELECT type, created_at FROM attributes WHERE name = $1`
	qAttributeList   = `SELECT name, type, created_at FROM attributes ORDER BY name`
	qAttributeDelete = `DELETE FROM attributes WHERE name = $1`

	segmentColumns = `id, name, filter, created_at, updated_at`
	qSegmentInsert = `INSERT INTO segments (` + segmentColumns + `) VALUES ($1, $2, $3, $4, $5)`
	qSegmentGet    = `SELECT ` + segmentColumns + ` FROM segments WHERE id = $1`
	qSegmentList   = `SELECT ` + segmentColumns + ` FROM segments ORDER BY id`
	qSegmentUpdate = `UPDATE segments SET name = $2, filter = $3, updated_at = $4 WHERE id = $1
		RETURNING ` + segmentColumns
	qSegmentDelete = `DELETE FROM segments WHERE id = $1`

	// The columns scanSegmentContact reads; the caller adds WHERE, ORDER BY and LIMIT.
	// Qualified: a filter may join subscriptions, which has some of the same names.
	qSegmentContactsSelect = `SELECT contacts.id, contacts.email, contacts.email_key, contacts.external_id,
		contacts.name, contacts.locale, contacts.timezone, contacts.attributes, contacts.last_active_at,
		contacts.created_at, contacts.updated_at FROM contacts`
)
