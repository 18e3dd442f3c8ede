package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// scanTemplate reads one row of templateColumns.
func scanTemplate(sc scanner) (store.Template, error) {
	var (
		t                store.Template
		version, created int64
		deleted          sql.NullInt64
		schema, locales  []byte
	)
	err := sc.Scan(&t.Name, &version, &t.Subject, &t.HTML, &t.Text, &t.Layout, &schema,
		&t.Description, &locales, &t.Origin, &created, &deleted)
	if err != nil {
		return store.Template{}, err
	}
	t.Version = int(version)
	t.CreatedAt = fromMicros(created)
	t.DeletedAt = fromMicros(deleted.Int64)
	if err := driverkit.DecodeTemplateJSON(&t, schema, locales); err != nil {
		return store.Template{}, err
	}
	return t, nil
}

// readTemplateHead reads the head of name inside a write.
func readTemplateHead(t *wtx, name string) (driverkit.TemplateHead, error) {
	var (
		h       driverkit.TemplateHead
		latest  int64
		deleted sql.NullInt64
	)
	err := t.queryRow(qTemplateHead, []any{name}, &latest, &h.Origin, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return driverkit.TemplateHead{}, nil
	}
	if err != nil {
		return driverkit.TemplateHead{}, err
	}
	h.Live, h.Latest = !deleted.Valid, int(latest)
	return h, nil
}

// TemplatePut implements store.Store.
func (s *Store) TemplatePut(ctx context.Context, p store.TemplatePutParams) (store.Template, error) {
	tpl := p.Template
	if err := driverkit.CheckTemplate(tpl); err != nil {
		return store.Template{}, fmt.Errorf("sqlite: %w", err)
	}
	locales, err := jsonText(tpl.Locales, len(tpl.Locales) == 0)
	if err != nil {
		return store.Template{}, fmt.Errorf("sqlite: template %s: encoding locales: %w", tpl.Name, err)
	}
	now := micros(p.Now)
	tpl.CreatedAt = fromMicros(now)
	tpl.DeletedAt = time.Time{}
	err = s.w.do(ctx, 1, func(t *wtx) error {
		h, err := readTemplateHead(t, tpl.Name)
		if err != nil {
			return err
		}
		if tpl.Version, err = h.NextVersion(p); err != nil {
			return err
		}
		if _, err := t.exec(qTemplateHeadUpsert, tpl.Name, int64(tpl.Version), tpl.Origin, now); err != nil {
			return err
		}
		_, err = t.exec(qTemplateVersionInsert, tpl.Name, int64(tpl.Version), tpl.Subject, tpl.HTML,
			tpl.Text, tpl.Layout, rawJSONText(tpl.Schema), tpl.Description, locales, tpl.Origin, now)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Template{}, err
		}
		return store.Template{}, fmt.Errorf("sqlite: storing template %s: %w", tpl.Name, err)
	}
	return tpl, nil
}

// TemplateGet implements store.Store.
func (s *Store) TemplateGet(ctx context.Context, name string, version int) (store.Template, error) {
	q, args := qTemplateGetLatest, []any{name}
	if version > 0 {
		q, args = qTemplateGetVersion, []any{name, int64(version)}
	}
	tpl, err := readOne(ctx, s, q, args, scanTemplate)
	if errors.Is(err, sql.ErrNoRows) {
		if version > 0 {
			return store.Template{}, fmt.Errorf("template %s version %d: %w", name, version, store.ErrNotFound)
		}
		return store.Template{}, fmt.Errorf("template %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Template{}, fmt.Errorf("sqlite: template %s: %w", name, err)
	}
	return tpl, nil
}

// TemplateList implements store.Store. The cursor is the last name of the page, base64url-encoded.
func (s *Store) TemplateList(ctx context.Context, p store.TemplateListParams) ([]store.Template, string, error) {
	after, err := store.TemplateCursorAfter(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	page, err := readAll(ctx, s, qTemplateList, []any{p.Origin, after, int64(limit + 1)}, scanTemplate)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing templates: %w", err)
	}
	page, next := driverkit.TemplatePage(page, limit)
	return page, next, nil
}

// TemplateDelete implements store.Store. The checks and the delete run in one write transaction,
// so a message accepted concurrently is either seen by the check or made from the template before
// it was deleted.
func (s *Store) TemplateDelete(ctx context.Context, p store.TemplateDeleteParams) error {
	err := s.w.do(ctx, 1, func(t *wtx) error {
		h, err := readTemplateHead(t, p.Name)
		if err != nil {
			return err
		}
		if err := h.CheckDelete(p); err != nil {
			return err
		}
		if !p.Force {
			var msgID, user string
			err := t.queryRow(qTemplateUsedByMessage, []any{p.Name}, &msgID)
			if err == nil {
				return driverkit.TemplateInUse(p.Name, msgID)
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			err = t.queryRow(qTemplateUsedAsLayout, []any{p.Name}, &user)
			if err == nil {
				return driverkit.TemplateIsLayout(p.Name, user)
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		_, err = t.exec(qTemplateDelete, micros(p.Now), p.Name)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return err
		}
		return fmt.Errorf("sqlite: deleting template %s: %w", p.Name, err)
	}
	return nil
}
