package driverkit

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/postie/postie/internal/store"
)

// SourceJSON is the JSON columns of a source: mapping, lists and last_stats (nil when empty).
type SourceJSON struct {
	Mapping, Lists, Stats []byte
}

// CheckSource checks what every driver needs of a source before it is written.
func CheckSource(src store.Source) error {
	switch {
	case src.ID == "" || src.Name == "" || src.DSN == "" || src.Query == "":
		return errors.New("a source needs an ID, a Name, a DSN and a Query")
	case src.Driver != store.SourceMySQL && src.Driver != store.SourcePostgres:
		return fmt.Errorf("source %s: unknown driver %q", src.ID, src.Driver)
	case src.Interval <= 0 || src.Overlap < 0 || src.ReconcileEvery < 0:
		return fmt.Errorf("source %s: Interval must be positive, Overlap and ReconcileEvery not negative", src.ID)
	case len(src.MarkKey) > 0 && !json.Valid(src.MarkKey):
		return fmt.Errorf("source %s: the mark key is not JSON", src.ID)
	}
	return nil
}

// PrepareSource checks src (a SourceUpdate's may leave its DSN empty, to keep the stored one) and
// encodes its JSON columns.
func PrepareSource(src store.Source, update bool) (SourceJSON, error) {
	check := src
	if update && check.DSN == "" {
		check.DSN = "kept"
	}
	if err := CheckSource(check); err != nil {
		return SourceJSON{}, err
	}
	j, err := encodeSourceJSON(src)
	if err != nil {
		return SourceJSON{}, fmt.Errorf("source %s: %w", src.ID, err)
	}
	return j, nil
}

// encodeSourceJSON encodes the JSON columns of src.
func encodeSourceJSON(src store.Source) (SourceJSON, error) {
	var j SourceJSON
	var err error
	if j.Mapping, err = json.Marshal(src.Mapping); err != nil {
		return j, err
	}
	if len(src.Lists) > 0 {
		if j.Lists, err = json.Marshal(src.Lists); err != nil {
			return j, err
		}
	}
	j.Stats, err = EncodeSourceStats(src.LastStats)
	return j, err
}

// EncodeSourceStats encodes a pass's stats (nil for none).
func EncodeSourceStats(st store.SourceStats) ([]byte, error) {
	if st.Rows == 0 && st.Upserted == 0 && st.Deleted == 0 && st.Skipped == 0 && !st.Reconciled {
		return nil, nil
	}
	return json.Marshal(st)
}

// Decode fills the JSON fields of src.
func (j SourceJSON) Decode(src *store.Source) error {
	if err := json.Unmarshal(j.Mapping, &src.Mapping); err != nil {
		return fmt.Errorf("source %s: mapping: %w", src.ID, err)
	}
	if len(j.Lists) > 0 {
		if err := json.Unmarshal(j.Lists, &src.Lists); err != nil {
			return fmt.Errorf("source %s: lists: %w", src.ID, err)
		}
	}
	if len(j.Stats) > 0 {
		if err := json.Unmarshal(j.Stats, &src.LastStats); err != nil {
			return fmt.Errorf("source %s: stats: %w", src.ID, err)
		}
	}
	return nil
}

// SourceLimit is the number of sources one SourceClaim leases at most.
func SourceLimit(limit int) int {
	if limit <= 0 {
		return 10
	}
	return limit
}
