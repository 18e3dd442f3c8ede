package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// scanTemplate reads one row of templateColumns.
func scanTemplate(sc scanner) (store.Template, error) {
	var (
		t                store.Template
		version          int32
		created, deleted pgtype.Timestamptz
		schema, locales  []byte
	)
	err := sc.Scan(&t.Name, &version, &t.Subject, &t.HTML, &t.Text, &t.Layout, &schema,
		&t.Description, &locales, &t.Origin, &created, &deleted)
	if err != nil {
		return store.Template{}, err
	}
	t.Version = int(version)
	t.CreatedAt = fromTS(created)
	t.DeletedAt = fromTS(deleted)
	if err := driverkit.DecodeTemplateJSON(&t, schema, locales); err != nil {
		return store.Template{}, err
	}
	return t, nil
}

// lockTemplateHead reads the head of name and locks it until tx ends.
func lockTemplateHead(ctx context.Context, tx pgx.Tx, name string) (driverkit.TemplateHead, error) {
	var (
		h       driverkit.TemplateHead
		latest  int32
		deleted pgtype.Timestamptz
	)
	err := tx.QueryRow(ctx, qTemplateHeadLock, name).Scan(&latest, &h.Origin, &deleted)
	if noRows(err) {
		return driverkit.TemplateHead{}, nil
	}
	if err != nil {
		return driverkit.TemplateHead{}, err
	}
	h.Live, h.Latest = !deleted.Valid && latest > 0, int(latest)
	return h, nil
}

// TemplatePut implements store.Store.
func (s *Store) TemplatePut(ctx context.Context, p store.TemplatePutParams) (store.Template, error) {
	tpl := p.Template
	if err := driverkit.CheckTemplate(tpl); err != nil {
		return store.Template{}, fmt.Errorf("postgres: %w", err)
	}
	locales, err := jsonValue(tpl.Locales, len(tpl.Locales) == 0)
	if err != nil {
		return store.Template{}, fmt.Errorf("postgres: template %s: encoding locales: %w", tpl.Name, unavailable(err))
	}
	now := tsNotNull(p.Now)
	tpl.CreatedAt = fromTS(now)
	tpl.DeletedAt = time.Time{}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, qTemplateHeadEnsure, tpl.Name, tpl.Origin, now); err != nil {
			return err
		}
		h, err := lockTemplateHead(ctx, tx, tpl.Name)
		if err != nil {
			return err
		}
		if tpl.Version, err = h.NextVersion(p); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(qTemplateHeadUpdate, tpl.Name, int32(tpl.Version), tpl.Origin)
		b.Queue(qTemplateVersionInsert, tpl.Name, int32(tpl.Version), tpl.Subject, tpl.HTML,
			tpl.Text, tpl.Layout, toText(rawJSON(tpl.Schema)), tpl.Description, toText(locales), tpl.Origin, now)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Template{}, err
		}
		return store.Template{}, fmt.Errorf("postgres: storing template %s: %w", tpl.Name, unavailable(err))
	}
	return tpl, nil
}

// TemplateGet implements store.Store.
func (s *Store) TemplateGet(ctx context.Context, name string, version int) (store.Template, error) {
	q, args := qTemplateGetLatest, []any{name}
	if version > 0 {
		q, args = qTemplateGetVersion, []any{name, int32(min(version, 1<<31-1))}
	}
	tpl, err := scanTemplate(s.pool.QueryRow(ctx, q, args...))
	if noRows(err) {
		if version > 0 {
			return store.Template{}, fmt.Errorf("template %s version %d: %w", name, version, store.ErrNotFound)
		}
		return store.Template{}, fmt.Errorf("template %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Template{}, fmt.Errorf("postgres: template %s: %w", name, unavailable(err))
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
	page, err := readAll(ctx, s, qTemplateList, []any{p.Origin, after, int32(limit + 1)}, scanTemplate)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing templates: %w", unavailable(err))
	}
	page, next := driverkit.TemplatePage(page, limit)
	return page, next, nil
}

// TemplateDelete implements store.Store. The head is locked while the checks run, so a concurrent
// put of the name waits for the delete.
func (s *Store) TemplateDelete(ctx context.Context, p store.TemplateDeleteParams) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		h, err := lockTemplateHead(ctx, tx, p.Name)
		if err != nil {
			return err
		}
		if err := h.CheckDelete(p); err != nil {
			return err
		}
		if !p.Force {
			var msgID, user string
			err := tx.QueryRow(ctx, qTemplateUsedByMessage, p.Name).Scan(&msgID)
			if err == nil {
				return driverkit.TemplateInUse(p.Name, msgID)
			} else if !noRows(err) {
				return err
			}
			err = tx.QueryRow(ctx, qTemplateUsedAsLayout, p.Name).Scan(&user)
			if err == nil {
				return driverkit.TemplateIsLayout(p.Name, user)
			} else if !noRows(err) {
				return err
			}
		}
		_, err = tx.Exec(ctx, qTemplateDelete, tsNotNull(p.Now), p.Name)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return err
		}
		return fmt.Errorf("postgres: deleting template %s: %w", p.Name, unavailable(err))
	}
	return nil
}
