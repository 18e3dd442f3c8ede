package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The audience area (store.Audience): contacts, lists, subscriptions and consent records. A
// batch of upserts is one transaction: it locks the contacts its keys name (FOR UPDATE, so
// concurrent batches merge attributes one after the other), loads their subscriptions, applies
// the batch in memory (driverkit.PlanUpsert) and writes the result in one pipelined batch of
// unnest statements. A batch that meets a concurrent one creating the same contact (a unique
// violation) or a deadlock runs again from the start.

const contactColumns = `id, email, email_key, external_id, name, locale, timezone, attributes::text,
	last_active_at, created_at, updated_at`

// contactColumnsC is contactColumns of the table aliased c.
const contactColumnsC = `c.id, c.email, c.email_key, c.external_id, c.name, c.locale, c.timezone,
	c.attributes::text, c.last_active_at, c.created_at, c.updated_at`

const subscriptionColumns = `list_id, contact_id, status, source, created_at, updated_at, confirmed_at,
	unsubscribed_at`

const listColumns = `id, name, description, public, double_opt_in, wording, created_at, updated_at`

const listCounts = `,
	(SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND s.status = 'subscribed'),
	(SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND s.status = 'pending'),
	(SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND s.status = 'unsubscribed')`

var (
	contactParamTypes      = []string{"text", "text", "text", "text", "text", "text", "text", "text", "timestamptz", "timestamptz", "timestamptz"}
	subscriptionParamTypes = []string{"text", "text", "text", "text", "timestamptz", "timestamptz", "timestamptz", "timestamptz"}
	consentParamTypes      = []string{"text", "text", "text", "text", "text", "text", "text", "timestamptz"}
)

const (
	qContactsByKeys = `SELECT ` + contactColumns + ` FROM contacts
		WHERE email_key = ANY ($1::text[]) OR external_id = ANY ($2::text[]) OR id = ANY ($3::text[])
		ORDER BY id FOR UPDATE`
	qSubscriptionsOf = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE contact_id = ANY ($1::text[])`
	// FOR SHARE: a list cannot go while a batch subscribes to it.
	qListInfos = `SELECT id, double_opt_in, wording FROM lists FOR SHARE`
	qListInfo  = `SELECT double_opt_in, wording FROM lists WHERE id = $1 FOR SHARE`

	qContactInsert = `INSERT INTO contacts (id, email, email_key, external_id, name, locale, timezone,
			attributes, last_active_at, created_at, updated_at)
		SELECT id, email, email_key, external_id, name, locale, timezone, attributes::jsonb,
			last_active_at, created_at, updated_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])
			AS c (id, email, email_key, external_id, name, locale, timezone, attributes, last_active_at,
				created_at, updated_at)`
	qContactUpdate = `UPDATE contacts SET email = $2, email_key = $3, external_id = $4, name = $5,
		locale = $6, timezone = $7, attributes = $8::jsonb, last_active_at = $9, updated_at = $10 WHERE id = $1`
	qSubscriptionPut = `INSERT INTO subscriptions (` + subscriptionColumns + `)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
			$6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
		ON CONFLICT (list_id, contact_id) DO UPDATE SET status = excluded.status, source = excluded.source,
			updated_at = excluded.updated_at, confirmed_at = excluded.confirmed_at,
			unsubscribed_at = excluded.unsubscribed_at`
	qConsentInsert = `INSERT INTO consent_records (contact_id, list_id, action, source, ip, user_agent, wording, at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::timestamptz[])`

	qContactByID  = `SELECT ` + contactColumns + ` FROM contacts WHERE id = $1`
	qContactByKey = `SELECT ` + contactColumns + ` FROM contacts WHERE email_key = $1`
	qContactByExt = `SELECT ` + contactColumns + ` FROM contacts WHERE external_id = $1`

	qContactList = `SELECT ` + contactColumns + ` FROM contacts WHERE id > $1 ORDER BY id LIMIT $2`
	// A list's members walk the subscriptions' primary key, or subscriptions_status, in contact
	// order: a page costs its rows, whatever the list's size.
	qContactListOfList = `SELECT ` + contactColumnsC + ` FROM subscriptions s JOIN contacts c ON c.id = s.contact_id
		WHERE s.list_id = $3 AND s.contact_id > $1 ORDER BY s.contact_id LIMIT $2`
	qContactListOfListStatus = `SELECT ` + contactColumnsC + ` FROM subscriptions s JOIN contacts c ON c.id = s.contact_id
		WHERE s.list_id = $3 AND s.status = $4 AND s.contact_id > $1 ORDER BY s.contact_id LIMIT $2`

	qContactSubscriptions = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE contact_id = $1
		ORDER BY list_id`
	qSubscriptionGet = `SELECT ` + subscriptionColumns + ` FROM subscriptions
		WHERE list_id = $1 AND contact_id = $2`
	qContactConsent = `SELECT id, contact_id, list_id, action, source, ip, user_agent, wording, at
		FROM consent_records WHERE contact_id = $1 ORDER BY id`
	qContactDelete = `DELETE FROM contacts WHERE id = $1`

	qListInsert = `INSERT INTO lists (` + listColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	qListGet    = `SELECT ` + listColumns + listCounts + ` FROM lists l WHERE id = $1`
	qListList   = `SELECT ` + listColumns + listCounts + ` FROM lists l ORDER BY id`
	qListUpdate = `UPDATE lists SET name = $2, description = $3, public = $4, double_opt_in = $5,
		wording = $6, updated_at = $7 WHERE id = $1`
	qListDelete = `DELETE FROM lists WHERE id = $1`

	qEraseMessageUpdate = `UPDATE messages SET to_addrs = $2::jsonb, cc_addrs = $3::jsonb, bcc_addrs = $4::jsonb,
		reply_to = $5, subject = '', data = NULL, headers = NULL, metadata = NULL, recipients = $6::jsonb,
		pending_recipients = CASE WHEN pending_recipients IS NULL THEN NULL ELSE (
			SELECT coalesce(jsonb_agg(v), '[]') FROM jsonb_array_elements_text(pending_recipients) v
			WHERE v <> ALL ($7::text[])) END,
		updated_at = $8 WHERE id = $1`
	qEraseRaw        = `UPDATE message_raw SET raw = '\x' WHERE message_id = $1`
	qEraseRecipients = `DELETE FROM message_recipients WHERE message_id = $1 AND email_lower = ANY ($2::text[])`
	qEraseEvents     = `UPDATE message_events SET detail = NULL WHERE message_id = $1 AND detail IS NOT NULL
		AND EXISTS (SELECT 1 FROM unnest($2::text[]) a WHERE strpos(lower(detail::text), a) > 0)`
	qEraseIdempotency = `DELETE FROM idempotency_keys WHERE (api_key_id = $1 AND key = $2 AND $2 <> '')
		OR EXISTS (SELECT 1 FROM unnest($3::text[]) a
			WHERE strpos(lower(convert_from(response, 'UTF8')), a) > 0)`
	qEraseSuppressions = `DELETE FROM suppressions WHERE email = ANY ($1::text[])`
	qEraseAppEvents    = `DELETE FROM events WHERE contact_id = $1 AND contact_id <> ''`
	// The webhook deliveries about the person: their contact's, and those of messages to their
	// addresses (recipients are lowercased). A scan: erasures are rare, and an index for them
	// would cost every report.
	qEraseWebhookDeliveries = `DELETE FROM webhook_deliveries WHERE subject = $1 OR recipient = ANY ($2::text[])`
)

// qEraseMessages locks the messages naming an address.
var qEraseMessages = `SELECT ` + messageColumns + ` FROM messages WHERE id IN (
		SELECT message_id FROM message_recipients WHERE email_lower = ANY ($1::text[]))
		ORDER BY id FOR UPDATE`

func scanContact(sc scanner) (store.Contact, error) {
	var (
		c                        store.Contact
		ext                      pgtype.Text
		attrs                    string
		active, created, updated pgtype.Timestamptz
	)
	if err := sc.Scan(&c.ID, &c.Email, &c.EmailKey, &ext, &c.Name, &c.Locale, &c.Timezone, &attrs,
		&active, &created, &updated); err != nil {
		return c, err
	}
	c.ExternalID = ext.String
	c.Attributes = []byte(attrs)
	c.LastActiveAt = fromTS(active)
	c.CreatedAt = fromTS(created)
	c.UpdatedAt = fromTS(updated)
	return c, nil
}

func attributesText(a []byte) string {
	if len(a) == 0 {
		return "{}"
	}
	return string(a)
}

func contactArgs(c *store.Contact) []any {
	return []any{c.ID, c.Email, c.EmailKey, nullString(c.ExternalID), c.Name, c.Locale, c.Timezone,
		attributesText(c.Attributes), ts(c.LastActiveAt), tsNotNull(c.CreatedAt), tsNotNull(c.UpdatedAt)}
}

func scanSubscription(sc scanner) (store.Subscription, error) {
	var (
		s                                    store.Subscription
		created, updated, confirmed, unsubAt pgtype.Timestamptz
	)
	if err := sc.Scan(&s.ListID, &s.ContactID, &s.Status, &s.Source, &created, &updated, &confirmed, &unsubAt); err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt = fromTS(created), fromTS(updated)
	s.ConfirmedAt, s.UnsubscribedAt = fromTS(confirmed), fromTS(unsubAt)
	return s, nil
}

func subscriptionArgs(s *store.Subscription) []any {
	return []any{s.ListID, s.ContactID, s.Status, s.Source, tsNotNull(s.CreatedAt), tsNotNull(s.UpdatedAt),
		ts(s.ConfirmedAt), ts(s.UnsubscribedAt)}
}

func consentArgs(r *store.ConsentRecord) []any {
	return []any{r.ContactID, r.ListID, r.Action, r.Source, r.IP, r.UserAgent, r.Wording, tsNotNull(r.At)}
}

func scanList(sc scanner) (store.List, error) {
	var (
		l                store.List
		created, updated pgtype.Timestamptz
		sub, pend, unsub int64
	)
	if err := sc.Scan(&l.ID, &l.Name, &l.Description, &l.Public, &l.DoubleOptIn, &l.Wording, &created, &updated,
		&sub, &pend, &unsub); err != nil {
		return l, err
	}
	l.CreatedAt, l.UpdatedAt = fromTS(created), fromTS(updated)
	l.Subscribed, l.Pending, l.Unsubscribed = int(sub), int(pend), int(unsub)
	return l, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queryTx runs q on tx (a pool or a transaction) and reads every row with scan.
func queryTx[T any](ctx context.Context, tx querier, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// retryable tells whether a transaction failed on a race with another one that running it again
// resolves: a unique violation (a concurrent batch created the same contact), a deadlock or a
// serialization failure.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// inTx runs fn in a transaction, again (a few times) when it lost a race (retryable).
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range 5 {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

// ContactsUpsert implements store.Audience.
func (s *Store) ContactsUpsert(ctx context.Context, p store.ContactsUpsertParams) ([]store.ContactUpsertResult, error) {
	if len(p.Items) == 0 {
		return nil, nil
	}
	var (
		results  []store.ContactUpsertResult
		reported int
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		results, reported, err = upsertContacts(ctx, tx, p.Items, p.Now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: upserting contacts: %w", unavailable(err))
	}
	s.webhooksWritten(reported)
	return results, nil
}

// upsertContacts applies a batch of upserts in the transaction tx. It returns the results and
// how many webhook deliveries the subscription changes wrote (for webhooksWritten after the
// commit).
func upsertContacts(ctx context.Context, tx pgx.Tx, items []store.ContactUpsert, now time.Time) ([]store.ContactUpsertResult, int, error) {
	keys, exts, ids := driverkit.UpsertKeys(items)
	needLists := driverkit.UpsertNeedsLists(items)
	existing, err := queryTx(ctx, tx, qContactsByKeys, []any{nonNilStrings(keys), nonNilStrings(exts), nonNilStrings(ids)}, scanContact)
	if err != nil {
		return nil, 0, fmt.Errorf("loading contacts: %w", err)
	}
	var subs []store.Subscription
	lists := map[string]driverkit.ListInfo{}
	if needLists {
		if len(existing) > 0 {
			ids := make([]string, len(existing))
			for i, c := range existing {
				ids[i] = c.ID
			}
			if subs, err = queryTx(ctx, tx, qSubscriptionsOf, []any{ids}, scanSubscription); err != nil {
				return nil, 0, fmt.Errorf("loading subscriptions: %w", err)
			}
		}
		if lists, err = listInfos(ctx, tx); err != nil {
			return nil, 0, err
		}
	}
	plan := driverkit.PlanUpsert(items, existing, subs, lists, now)
	err = writePlan(ctx, tx, &plan)
	return plan.Results, plan.Reported, err
}

func listInfos(ctx context.Context, tx pgx.Tx) (map[string]driverkit.ListInfo, error) {
	rows, err := tx.Query(ctx, qListInfos)
	if err != nil {
		return nil, fmt.Errorf("loading lists: %w", err)
	}
	defer rows.Close()
	lists := map[string]driverkit.ListInfo{}
	for rows.Next() {
		var (
			id string
			li driverkit.ListInfo
		)
		if err := rows.Scan(&id, &li.DoubleOptIn, &li.Wording); err != nil {
			return nil, err
		}
		lists[id] = li
	}
	return lists, rows.Err()
}

// writePlan writes an upsert plan in one pipelined batch, in the order driverkit.UpsertPlan
// gives, its webhook reports last (plan.Reported).
func writePlan(ctx context.Context, tx pgx.Tx, plan *driverkit.UpsertPlan) error {
	b := &pgx.Batch{}
	for i := range plan.Updates {
		c := &plan.Updates[i]
		b.Queue(qContactUpdate, c.ID, c.Email, c.EmailKey, nullString(c.ExternalID), c.Name, c.Locale,
			c.Timezone, attributesText(c.Attributes), ts(c.LastActiveAt), tsNotNull(c.UpdatedAt))
	}
	if len(plan.Inserts) > 0 {
		rows := make([][]any, len(plan.Inserts))
		for i, c := range plan.Inserts {
			rows[i] = contactArgs(c)
		}
		b.Queue(qContactInsert, columns(rows, contactParamTypes...)...)
	}
	if len(plan.Subscriptions) > 0 {
		rows := make([][]any, len(plan.Subscriptions))
		for i, sub := range plan.Subscriptions {
			rows[i] = subscriptionArgs(sub)
		}
		b.Queue(qSubscriptionPut, columns(rows, subscriptionParamTypes...)...)
	}
	if len(plan.Consents) > 0 {
		rows := make([][]any, len(plan.Consents))
		for i := range plan.Consents {
			rows[i] = consentArgs(&plan.Consents[i])
		}
		b.Queue(qConsentInsert, columns(rows, consentParamTypes...)...)
	}
	var err error
	plan.Reported, err = sendOutboxBatch(ctx, tx, b, plan.Now, plan.Reports)
	return err
}

func contactRef(ref store.ContactRef) (string, any) {
	switch {
	case ref.ID != "":
		return qContactByID, ref.ID
	case ref.ExternalID != "":
		return qContactByExt, ref.ExternalID
	}
	return qContactByKey, ref.EmailKey
}

// ContactGet implements store.Audience.
func (s *Store) ContactGet(ctx context.Context, ref store.ContactRef) (store.Contact, error) {
	q, arg := contactRef(ref)
	c, err := scanContact(s.pool.QueryRow(ctx, q, arg))
	if noRows(err) {
		return c, driverkit.ContactRefError(ref)
	}
	if err != nil {
		return c, fmt.Errorf("postgres: contact %s: %w", driverkit.RefString(ref), unavailable(err))
	}
	return c, nil
}

// ContactList implements store.Audience.
func (s *Store) ContactList(ctx context.Context, p store.ContactListParams) ([]store.Contact, string, error) {
	after, err := store.ContactCursorAfter(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := driverkit.ListLimit(p.Limit)
	q, args := qContactList, []any{after, int32(limit + 1)}
	switch {
	case p.ListID != "" && p.SubscriptionStatus != "":
		q, args = qContactListOfListStatus, append(args, p.ListID, p.SubscriptionStatus)
	case p.ListID != "":
		q, args = qContactListOfList, append(args, p.ListID)
	}
	page, err := readAll(ctx, s, q, args, scanContact)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: listing contacts: %w", unavailable(err))
	}
	page, next := driverkit.ContactPage(page, limit)
	return page, next, nil
}

// contactInTx finds ref in tx and locks its row.
func contactInTx(ctx context.Context, tx pgx.Tx, ref store.ContactRef) (store.Contact, error) {
	q, arg := contactRef(ref)
	c, err := scanContact(tx.QueryRow(ctx, q+` FOR UPDATE`, arg))
	if noRows(err) {
		return c, driverkit.ContactRefError(ref)
	}
	return c, err
}

// ContactDelete implements store.Audience.
func (s *Store) ContactDelete(ctx context.Context, p store.ContactDeleteParams) error {
	if p.Erase && p.ErasedKey == "" {
		return errors.New("postgres: erasing a contact needs its ErasedKey")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := contactInTx(ctx, tx, p.Ref)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, qContactDelete, c.ID); err != nil {
			return err
		}
		if !p.Erase {
			return nil
		}
		return erase(ctx, tx, c, p)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("postgres: deleting contact %s: %w", driverkit.RefString(p.Ref), unavailable(err))
	}
	return nil
}

// erase removes what the messages, idempotency records and suppressions hold of c, and
// suppresses its ErasedKey.
func erase(ctx context.Context, tx pgx.Tx, c store.Contact, p store.ContactDeleteParams) error {
	addrs := driverkit.ErasedAddresses(c)
	msgs, err := queryTx(ctx, tx, qEraseMessages, []any{addrs}, scanMessage)
	if err != nil {
		return fmt.Errorf("finding messages: %w", err)
	}
	now := tsNotNull(p.Now)
	for _, m := range msgs {
		if m.Status.Cancellable() {
			// A message still waiting is cancelled: its MIME goes.
			cancelled, err := queryTx(ctx, tx, qMessageCancel, []any{now, m.ID}, scanMessage)
			if err != nil {
				return err
			}
			if len(cancelled) == 0 {
				// Not reported to webhooks: the report would carry the address being erased.
				if _, _, err := cancelSplit(ctx, tx, m.ID, m.Status, p.Now, false); err != nil {
					return err
				}
			}
		}
		driverkit.EraseMessage(&m, addrs)
		j, err := driverkit.EncodeMessageJSON(&m)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(qEraseMessageUpdate, m.ID, textOrNil(j.To), textOrNil(j.Cc), textOrNil(j.Bcc), m.ReplyTo,
			textOrNil(j.Recipients), addrs, now)
		b.Queue(qEraseRecipients, m.ID, addrs)
		b.Queue(qEraseEvents, m.ID, addrs)
		b.Queue(qEraseRaw, m.ID)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		if _, err := tx.Exec(ctx, qEraseIdempotency, m.APIKeyID, m.IdempotencyKey, addrs); err != nil {
			return err
		}
	}
	if len(msgs) == 0 {
		if _, err := tx.Exec(ctx, qEraseIdempotency, "", "", addrs); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, qEraseSuppressions, addrs); err != nil {
		return err
	}
	// The contact's application events (their data may name the person), with their actions.
	if _, err := tx.Exec(ctx, qEraseAppEvents, c.ID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, qEraseWebhookDeliveries, c.ID, addrs); err != nil {
		return err
	}
	sup, err := driverkit.CheckSuppression(driverkit.ErasedSuppression(p.ErasedKey, p.Now))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, qSuppressionUpsert, columns([][]any{suppressionArgs(sup)}, suppressionParamTypes...)...)
	return err
}

// ContactSubscriptions implements store.Audience.
func (s *Store) ContactSubscriptions(ctx context.Context, ref store.ContactRef) ([]store.Subscription, error) {
	c, err := s.ContactGet(ctx, ref)
	if err != nil {
		return nil, err
	}
	subs, err := readAll(ctx, s, qContactSubscriptions, []any{c.ID}, scanSubscription)
	if err != nil {
		return nil, fmt.Errorf("postgres: subscriptions of %s: %w", c.ID, unavailable(err))
	}
	return subs, nil
}

// ContactConsent implements store.Audience.
func (s *Store) ContactConsent(ctx context.Context, ref store.ContactRef) ([]store.ConsentRecord, error) {
	c, err := s.ContactGet(ctx, ref)
	if err != nil {
		return nil, err
	}
	recs, err := readAll(ctx, s, qContactConsent, []any{c.ID}, func(sc scanner) (store.ConsentRecord, error) {
		var (
			r  store.ConsentRecord
			at pgtype.Timestamptz
		)
		err := sc.Scan(&r.ID, &r.ContactID, &r.ListID, &r.Action, &r.Source, &r.IP, &r.UserAgent, &r.Wording, &at)
		r.At = fromTS(at)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: consent of %s: %w", c.ID, unavailable(err))
	}
	return recs, nil
}

// ListCreate implements store.Audience.
func (s *Store) ListCreate(ctx context.Context, l store.List) (store.List, error) {
	if err := driverkit.CheckList(l); err != nil {
		return l, fmt.Errorf("postgres: %w", err)
	}
	if l.UpdatedAt.IsZero() {
		l.UpdatedAt = l.CreatedAt
	}
	if _, err := s.pool.Exec(ctx, qListInsert, l.ID, l.Name, l.Description, l.Public, l.DoubleOptIn, l.Wording,
		tsNotNull(l.CreatedAt), tsNotNull(l.UpdatedAt)); err != nil {
		return l, fmt.Errorf("postgres: creating list %s: %w", l.ID, unavailable(err))
	}
	return s.ListGet(ctx, l.ID)
}

// ListGet implements store.Audience.
func (s *Store) ListGet(ctx context.Context, id string) (store.List, error) {
	l, err := scanList(s.pool.QueryRow(ctx, qListGet, id))
	if noRows(err) {
		return l, fmt.Errorf("list %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("postgres: list %s: %w", id, unavailable(err))
	}
	return l, nil
}

// ListList implements store.Audience.
func (s *Store) ListList(ctx context.Context) ([]store.List, error) {
	ls, err := readAll(ctx, s, qListList, nil, scanList)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing lists: %w", unavailable(err))
	}
	return ls, nil
}

// ListUpdate implements store.Audience.
func (s *Store) ListUpdate(ctx context.Context, l store.List, now time.Time) (store.List, error) {
	if err := driverkit.CheckList(l); err != nil {
		return l, fmt.Errorf("postgres: %w", err)
	}
	tag, err := s.pool.Exec(ctx, qListUpdate, l.ID, l.Name, l.Description, l.Public, l.DoubleOptIn, l.Wording, tsNotNull(now))
	if err != nil {
		return l, fmt.Errorf("postgres: updating list %s: %w", l.ID, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return l, fmt.Errorf("list %s: %w", l.ID, store.ErrNotFound)
	}
	return s.ListGet(ctx, l.ID)
}

// ListDelete implements store.Audience.
func (s *Store) ListDelete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, qListDelete, id)
	if err != nil {
		return fmt.Errorf("postgres: deleting list %s: %w", id, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("list %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// subscriptionInTx loads (and locks) what a change of one subscription needs: the list, the
// contact and the subscription (nil when none).
func subscriptionInTx(ctx context.Context, tx pgx.Tx, listID string, ref store.ContactRef) (driverkit.ListInfo, store.Contact, *store.Subscription, error) {
	var li driverkit.ListInfo
	err := tx.QueryRow(ctx, qListInfo, listID).Scan(&li.DoubleOptIn, &li.Wording)
	if noRows(err) {
		return li, store.Contact{}, nil, fmt.Errorf("list %s: %w", listID, store.ErrNotFound)
	}
	if err != nil {
		return li, store.Contact{}, nil, err
	}
	c, err := contactInTx(ctx, tx, ref)
	if err != nil {
		return li, c, nil, err
	}
	subs, err := queryTx(ctx, tx, qSubscriptionGet, []any{listID, c.ID}, scanSubscription)
	if err != nil || len(subs) == 0 {
		return li, c, nil, err
	}
	return li, c, &subs[0], nil
}

// putSubscription writes a changed subscription of the contact whose address is email, its
// consent record and its webhook report, and returns the number of deliveries written.
func putSubscription(ctx context.Context, tx pgx.Tx, sub *store.Subscription, email string, rec *store.ConsentRecord) (int, error) {
	b := &pgx.Batch{}
	b.Queue(qSubscriptionPut, columns([][]any{subscriptionArgs(sub)}, subscriptionParamTypes...)...)
	b.Queue(qConsentInsert, columns([][]any{consentArgs(rec)}, consentParamTypes...)...)
	var reports []outboxEvent
	if r, ok := driverkit.SubscriptionReport(*sub, email); ok {
		reports = append(reports, r)
	}
	return sendOutboxBatch(ctx, tx, b, rec.At, reports)
}

// SubscriptionSet implements store.Audience.
func (s *Store) SubscriptionSet(ctx context.Context, p store.SubscriptionSetParams) (store.SubscriptionSetResult, error) {
	if p.Status != store.SubscriptionSubscribed && p.Status != store.SubscriptionUnsubscribed {
		return store.SubscriptionSetResult{}, fmt.Errorf("postgres: subscription status %q", p.Status)
	}
	var (
		res     store.SubscriptionSetResult
		written int
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		written = 0
		li, c, cur, err := subscriptionInTx(ctx, tx, p.ListID, p.Contact)
		if err != nil {
			return err
		}
		next, action, kept := driverkit.ChangeSubscription(cur, li, p.Status, p.Resubscribe, p.Confirmed, p.Consent.Source, p.Now)
		next.ListID, next.ContactID = p.ListID, c.ID
		res = store.SubscriptionSetResult{Subscription: next, Kept: kept, Changed: action != ""}
		if action == "" {
			return nil
		}
		written, err = putSubscription(ctx, tx, &next, c.Email, &store.ConsentRecord{ContactID: c.ID, ListID: p.ListID,
			Action: action, Consent: p.Consent, Wording: li.Wording, At: p.Now})
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return res, err
		}
		return res, fmt.Errorf("postgres: subscription of %s to %s: %w", driverkit.RefString(p.Contact), p.ListID, unavailable(err))
	}
	s.webhooksWritten(written)
	return res, nil
}

// SubscriptionConfirm implements store.Audience.
func (s *Store) SubscriptionConfirm(ctx context.Context, listID, contactID string, c store.Consent, now time.Time) (store.Subscription, error) {
	var (
		sub     store.Subscription
		written int
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		written = 0
		li, ct, cur, err := subscriptionInTx(ctx, tx, listID, store.ContactRef{ID: contactID})
		if err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("subscription of %s to %s: %w", contactID, listID, store.ErrNotFound)
		}
		next, action := driverkit.ConfirmSubscription(*cur, c.Source, now)
		sub = next
		if action == "" {
			return nil
		}
		written, err = putSubscription(ctx, tx, &next, ct.Email, &store.ConsentRecord{ContactID: contactID, ListID: listID,
			Action: action, Consent: c, Wording: li.Wording, At: now})
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return sub, err
		}
		return sub, fmt.Errorf("postgres: confirming the subscription of %s to %s: %w", contactID, listID, unavailable(err))
	}
	s.webhooksWritten(written)
	return sub, nil
}
