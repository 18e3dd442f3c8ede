package audience

import (
	"context"
	"strings"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// Limits of a list's fields.
const (
	maxListName    = 200
	maxDescription = 2000
	maxWording     = 5000
)

// ListInput creates a list or, with its pointers, changes one (nil: unchanged).
type ListInput struct {
	Name        *string
	Description *string
	Public      *bool
	DoubleOptIn *bool
	Wording     *string
}

// apply checks in and applies it to l.
func (in ListInput) apply(l *store.List) error {
	var v invalid
	for _, f := range []struct {
		name      string
		src       *string
		dst       *string
		max       int
		multiline bool
	}{
		{"name", in.Name, &l.Name, maxListName, false},
		{"description", in.Description, &l.Description, maxDescription, true},
		{"wording", in.Wording, &l.Wording, maxWording, true},
	} {
		if f.src == nil {
			continue
		}
		if msg := textProblem(*f.src, f.max, f.multiline); msg != "" {
			v.add(f.name, msg, *f.src)
			continue
		}
		*f.dst = *f.src
	}
	if strings.TrimSpace(l.Name) == "" {
		v.add("name", "required", nil)
	}
	if in.Public != nil {
		l.Public = *in.Public
	}
	if in.DoubleOptIn != nil {
		l.DoubleOptIn = *in.DoubleOptIn
	}
	return v.err()
}

// ListCreate creates a list (lst_…).
func (s *Service) ListCreate(ctx context.Context, in ListInput) (store.List, error) {
	l := store.List{ID: id.New(id.List), CreatedAt: s.now()}
	if err := in.apply(&l); err != nil {
		return store.List{}, err
	}
	return s.cfg.Store.ListCreate(ctx, l)
}

// List returns one list with its counts.
func (s *Service) List(ctx context.Context, listID string) (store.List, error) {
	return s.cfg.Store.ListGet(ctx, listID)
}

// Lists returns every list with its counts.
func (s *Service) Lists(ctx context.Context) ([]store.List, error) {
	return s.cfg.Store.ListList(ctx)
}

// ListUpdate changes the fields of a list in gives. A new wording applies to the consent
// records written from now on; those already written keep the wording of their time.
func (s *Service) ListUpdate(ctx context.Context, listID string, in ListInput) (store.List, error) {
	l, err := s.cfg.Store.ListGet(ctx, listID)
	if err != nil {
		return store.List{}, err
	}
	if err := in.apply(&l); err != nil {
		return store.List{}, err
	}
	return s.cfg.Store.ListUpdate(ctx, l, s.now())
}

// ListDelete deletes a list and its subscriptions; the consent records stay with the contacts.
func (s *Service) ListDelete(ctx context.Context, listID string) error {
	return s.cfg.Store.ListDelete(ctx, listID)
}
