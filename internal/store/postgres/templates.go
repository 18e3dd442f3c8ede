package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
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
	if len(schema) > 0 {
		t.Schema = json.RawMessage(schema)
	}
	if len(locales) > 0 {
		if err := json.Unmarshal(locales, &t.Locales); err != nil {
			return store.Template{}, fmt.Errorf("template %s v%d: decoding locales: %w", t.Name, t.Version, err)
		}
	}
	return t, nil
}

// templateHead is the head row of a template name: its latest version and that version's origin.
type templateHead struct {
	live   bool // false also when the name was never stored (latest 0)
	latest int
	origin string
}

// lockTemplateHead reads the head of name and locks it until tx ends.
func lockTemplateHead(ctx context.Context, tx pgx.Tx, name string) (templateHead, error) {
	var (
		h       templateHead
		latest  int32
		deleted pgtype.Timestamptz
	)
	err := tx.QueryRow(ctx, qTemplateHeadLock, name).Scan(&latest, &h.origin, &deleted)
	if noRows(err) {
		return templateHead{}, nil
	}
	if err != nil {
		return templateHead{}, err
	}
	h.live, h.latest = !deleted.Valid && latest > 0, int(latest)
	return h, nil
}

// TemplatePut implements store.Store.
func (s *Store) TemplatePut(ctx context.Context, p store.TemplatePutParams) (store.Template, error) {
	tpl := p.Template
	if tpl.Name == "" || tpl.Origin == "" {
		return store.Template{}, errors.New("postgres: TemplatePut needs a Name and an Origin")
	}
	if len(tpl.Schema) > 0 && !json.Valid(tpl.Schema) {
		return store.Template{}, fmt.Errorf("postgres: template %s: the schema is not JSON", tpl.Name)
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
		if h.live && h.origin != tpl.Origin && !p.AnyOrigin {
			return fmt.Errorf("template %s is managed by origin %q, not %q: %w", tpl.Name, h.origin, tpl.Origin, store.ErrConflict)
		}
		tpl.Version = h.latest + 1
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
	after := ""
	if p.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || len(b) == 0 {
			return nil, "", fmt.Errorf("template cursor %q: %w", p.Cursor, store.ErrBadCursor)
		}
		after = string(b)
	}
	limit := listLimit(p.Limit)
	page, err := readAll(ctx, s, qTemplateList, []any{p.Origin, after, int32(limit + 1)}, scanTemplate)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing templates: %w", unavailable(err))
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(page[limit-1].Name))
	}
	return page, next, nil
}

// TemplateDelete implements store.Store. The head is locked while the checks run, so a concurrent
// put of the name waits for the delete.
func (s *Store) TemplateDelete(ctx context.Context, p store.TemplateDeleteParams) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		h, err := lockTemplateHead(ctx, tx, p.Name)
		switch {
		case err != nil:
			return err
		case !h.live:
			return fmt.Errorf("template %s: %w", p.Name, store.ErrNotFound)
		case h.origin != p.Origin && !p.AnyOrigin:
			return fmt.Errorf("template %s is managed by origin %q, not %q: %w", p.Name, h.origin, p.Origin, store.ErrConflict)
		}
		if !p.Force {
			var msgID, user string
			err := tx.QueryRow(ctx, qTemplateUsedByMessage, p.Name).Scan(&msgID)
			if err == nil {
				return fmt.Errorf("template %s is used by %s, which is waiting to be sent (scheduled, queued or deferred): %w",
					p.Name, msgID, store.ErrConflict)
			} else if !noRows(err) {
				return err
			}
			err = tx.QueryRow(ctx, qTemplateUsedAsLayout, p.Name).Scan(&user)
			if err == nil {
				return fmt.Errorf("template %s is the layout of template %s: %w", p.Name, user, store.ErrConflict)
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
