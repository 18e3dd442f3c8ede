package driverkit

import (
	"encoding/json"
	"fmt"

	"github.com/postie/postie/internal/store"
)

// ImportJSON holds an import's JSON columns, encoded.
type ImportJSON struct {
	Lists, Mapping, Counts, Errors []byte
}

// EncodeImportJSON encodes an import's JSON columns: lists, mapping, counts, and errors cut
// to the first store.ImportMaxErrors.
func EncodeImportJSON(imp store.Import) (ImportJSON, error) {
	var (
		j   ImportJSON
		err error
	)
	if j.Lists, err = json.Marshal(nonNilSlice(imp.Lists)); err != nil {
		return j, err
	}
	if imp.Mapping == nil {
		imp.Mapping = map[string]string{}
	}
	if j.Mapping, err = json.Marshal(imp.Mapping); err != nil {
		return j, err
	}
	if j.Counts, j.Errors, err = EncodeImportProgress(imp.Counts, imp.Errors); err != nil {
		return j, err
	}
	return j, nil
}

// EncodeImportProgress encodes an import's counts and its first store.ImportMaxErrors errors.
func EncodeImportProgress(c store.ImportCounts, errs []store.ImportRowError) (counts, errors []byte, err error) {
	if len(errs) > store.ImportMaxErrors {
		errs = errs[:store.ImportMaxErrors]
	}
	if counts, err = json.Marshal(c); err != nil {
		return nil, nil, err
	}
	errors, err = json.Marshal(nonNilSlice(errs))
	return counts, errors, err
}

// DecodeImportJSON decodes an import's JSON columns into imp.
func DecodeImportJSON(imp *store.Import, j ImportJSON) error {
	for _, c := range []struct {
		name string
		src  []byte
		dst  any
	}{{"lists", j.Lists, &imp.Lists}, {"mapping", j.Mapping, &imp.Mapping},
		{"counts", j.Counts, &imp.Counts}, {"errors", j.Errors, &imp.Errors}} {
		if len(c.src) == 0 {
			continue
		}
		if err := json.Unmarshal(c.src, c.dst); err != nil {
			return fmt.Errorf("import %s: decoding %s: %w", imp.ID, c.name, err)
		}
	}
	if len(imp.Lists) == 0 {
		imp.Lists = nil
	}
	if len(imp.Errors) == 0 {
		imp.Errors = nil
	}
	return nil
}

// CheckImport checks an import ImportCreate is given.
func CheckImport(imp store.Import) error {
	switch {
	case imp.ID == "":
		return fmt.Errorf("import: no ID")
	case imp.Mode != store.ImportUpsert && imp.Mode != store.ImportCreateOnly:
		return fmt.Errorf("import %s: mode %q", imp.ID, imp.Mode)
	case imp.CreatedAt.IsZero():
		return fmt.Errorf("import %s: no CreatedAt", imp.ID)
	}
	return nil
}

// CheckImportFinish checks the status ImportFinish is given.
func CheckImportFinish(p store.ImportProgressParams) error {
	if p.Status != store.ImportDone && p.Status != store.ImportFailed {
		return fmt.Errorf("import %s: finishing with status %q", p.ID, p.Status)
	}
	return nil
}

// ImportPage cuts imports read with limit+1 rows to a page of limit and returns the cursor of
// the next page (the last import's id; "" when this one is the last).
func ImportPage(page []store.Import, limit int) ([]store.Import, string) {
	return cutPage(page, limit, func(last store.Import) string { return last.ID })
}

// nonNilSlice makes a nil slice encode as [] rather than null.
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
