package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// The audience area (store.Audience): contacts, lists, subscriptions and consent records. A
// batch of upserts is one write operation: it loads the contacts its keys name and their
// subscriptions in two queries, applies the batch in memory (driverkit.PlanUpsert) and writes
// the result with prepared and multi-row statements.

const contactColumns = `id, email, email_key, external_id, name, locale, timezone, attributes,
	last_active_at, created_at, updated_at`

const contactColumnCount = 11

// contactColumnsC is contactColumns of the table aliased c.
const contactColumnsC = `c.id, c.email, c.email_key, c.external_id, c.name, c.locale, c.timezone, c.attributes,
	c.last_active_at, c.created_at, c.updated_at`

const subscriptionColumns = `list_id, contact_id, status, source, created_at, updated_at, confirmed_at,
	unsubscribed_at`

const subscriptionColumnCount = 8

const listColumns = `id, name, description, public, double_opt_in, wording, created_at, updated_at`

// listCounts are the subscription counts of a list, appended to listColumns.
const listCounts = `,
	(SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND s.status = 'subscribed'),
	(SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND s.status = 'pending'),
	(SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND s.status = 'unsubscribed')`

const (
	qContactsByKeys = `SELECT ` + contactColumns + ` FROM contacts WHERE id IN (
		SELECT id FROM contacts WHERE email_key IN (SELECT value FROM json_each(?1))
		UNION SELECT id FROM contacts WHERE external_id IN (SELECT value FROM json_each(?2))
		UNION SELECT value FROM json_each(?3))`
	qSubscriptionsOf = `SELECT ` + subscriptionColumns + ` FROM subscriptions
		WHERE contact_id IN (SELECT value FROM json_each(?))`
	qListInfos         = `SELECT id, double_opt_in, wording FROM lists`
	qListInfo          = `SELECT double_opt_in, wording FROM lists WHERE id = ?`
	qContactInsertInto = `INSERT INTO contacts (` + contactColumns + `) VALUES `
	// An update names the columns of the unique keys only when they change: SQLite rewrites the
	// index entries of every indexed column an UPDATE sets.
	qContactUpdate = `UPDATE contacts SET email = ?2, name = ?3, locale = ?4, timezone = ?5, attributes = ?6,
		last_active_at = ?7, updated_at = ?8 WHERE id = ?1`
	qContactUpdateKeys = `UPDATE contacts SET email = ?2, email_key = ?3, external_id = ?4, name = ?5,
		locale = ?6, timezone = ?7, attributes = ?8, last_active_at = ?9, updated_at = ?10 WHERE id = ?1`
	qSubscriptionPutInto = `INSERT OR REPLACE INTO subscriptions (` + subscriptionColumns + `) VALUES `
	qConsentInsertInto   = `INSERT INTO consent_records (contact_id, list_id, action, source, ip, user_agent,
		wording, at) VALUES `

	qContactByID  = `SELECT ` + contactColumns + ` FROM contacts WHERE id = ?`
	qContactByKey = `SELECT ` + contactColumns + ` FROM contacts WHERE email_key = ?`
	qContactByExt = `SELECT ` + contactColumns + ` FROM contacts WHERE external_id = ?`

	qContactList = `SELECT ` + contactColumns + ` FROM contacts WHERE id > ?1 ORDER BY id LIMIT ?2`
	// A list's members walk the subscriptions' primary key (list_id, contact_id), or with a
	// status subscriptions_status (list_id, status, contact_id), in contact order: a page costs
	// its rows, whatever the list's size.
	qContactListOfList = `SELECT ` + contactColumnsC + ` FROM subscriptions s JOIN contacts c ON c.id = s.contact_id
		WHERE s.list_id = ?3 AND s.contact_id > ?1 ORDER BY s.contact_id LIMIT ?2`
	qContactListOfListStatus = `SELECT ` + contactColumnsC + ` FROM subscriptions s JOIN contacts c ON c.id = s.contact_id
		WHERE s.list_id = ?3 AND s.status = ?4 AND s.contact_id > ?1 ORDER BY s.contact_id LIMIT ?2`

	qContactSubscriptions = `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE contact_id = ?
		ORDER BY list_id`
	qSubscriptionGet = `SELECT ` + subscriptionColumns + ` FROM subscriptions
		WHERE list_id = ? AND contact_id = ?`
	qContactConsent = `SELECT id, contact_id, list_id, action, source, ip, user_agent, wording, at
		FROM consent_records WHERE contact_id = ? ORDER BY id`
	qContactDelete = `DELETE FROM contacts WHERE id = ?`

	qListInsert = `INSERT INTO lists (` + listColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qListGet    = `SELECT ` + listColumns + listCounts + ` FROM lists l WHERE id = ?`
	qListList   = `SELECT ` + listColumns + listCounts + ` FROM lists l ORDER BY id`
	qListUpdate = `UPDATE lists SET name = ?2, description = ?3, public = ?4, double_opt_in = ?5,
		wording = ?6, updated_at = ?7 WHERE id = ?1`
	qListDelete = `DELETE FROM lists WHERE id = ?`

	// Erasure: the messages naming an address, the idempotency records of those messages or
	// whose response names it, the events whose detail names it.
	qEraseMessages = `SELECT ` + messageColumns + ` FROM messages WHERE id IN (
		SELECT message_id FROM message_recipients WHERE email_lower IN (SELECT value FROM json_each(?)))`
	qEraseMessageUpdate = `UPDATE messages SET to_addrs = ?2, cc_addrs = ?3, bcc_addrs = ?4, reply_to = ?5,
		subject = ?6, data = ?7, headers = ?8, metadata = ?9, recipients = ?10,
		pending_recipients = CASE WHEN pending_recipients IS NULL THEN NULL ELSE (
			SELECT json_group_array(value) FROM json_each(pending_recipients)
			WHERE value NOT IN (SELECT value FROM json_each(?11))) END,
		updated_at = ?12 WHERE id = ?1`
	qEraseRaw        = `UPDATE message_raw SET raw = x'' WHERE message_id = ?`
	qEraseRecipients = `DELETE FROM message_recipients WHERE message_id = ?1
		AND email_lower IN (SELECT value FROM json_each(?2))`
	qEraseEvents = `UPDATE message_events SET detail = NULL WHERE message_id = ?1 AND detail IS NOT NULL
		AND EXISTS (SELECT 1 FROM json_each(?2) a WHERE instr(lower(detail), a.value) > 0)`
	qEraseIdempotency = `DELETE FROM idempotency_keys WHERE (api_key_id = ?1 AND key = ?2 AND ?2 != '')
		OR EXISTS (SELECT 1 FROM json_each(?3) a WHERE instr(lower(CAST(response AS TEXT)), a.value) > 0)`
	qEraseSuppressions = `DELETE FROM suppressions WHERE email IN (SELECT value FROM json_each(?))`
	qEraseAppEvents    = `DELETE FROM events WHERE contact_id = ?1 AND contact_id <> ''`
	// The webhook deliveries about the person: their contact's, and those of messages to their
	// addresses (recipients are lowercased). A scan: erasures are rare, and an index for them
	// would cost every report.
	qEraseWebhookDeliveries = `DELETE FROM webhook_deliveries
		WHERE subject = ?1 OR recipient IN (SELECT value FROM json_each(?2))`
	qEraseIdempotencyAny = `DELETE FROM idempotency_keys
		WHERE EXISTS (SELECT 1 FROM json_each(?1) a WHERE instr(lower(CAST(response AS TEXT)), a.value) > 0)`
)

// scanContact reads one row of contactColumns.
func scanContact(sc scanner) (store.Contact, error) {
	var (
		c                        store.Contact
		ext                      sql.NullString
		attrs                    string
		active, created, updated sql.NullInt64
	)
	if err := sc.Scan(&c.ID, &c.Email, &c.EmailKey, &ext, &c.Name, &c.Locale, &c.Timezone, &attrs,
		&active, &created, &updated); err != nil {
		return c, err
	}
	c.ExternalID = ext.String
	c.Attributes = json.RawMessage(attrs)
	c.LastActiveAt = fromMicros(active.Int64)
	c.CreatedAt = fromMicros(created.Int64)
	c.UpdatedAt = fromMicros(updated.Int64)
	return c, nil
}

func contactArgs(c *store.Contact) []any {
	return []any{c.ID, c.Email, c.EmailKey, nullString(c.ExternalID), c.Name, c.Locale, c.Timezone,
		attributesText(c.Attributes), nullMicros(c.LastActiveAt), micros(c.CreatedAt), micros(c.UpdatedAt)}
}

func attributesText(a json.RawMessage) string {
	if len(a) == 0 {
		return "{}"
	}
	return string(a)
}

func scanSubscription(sc scanner) (store.Subscription, error) {
	var (
		s                                    store.Subscription
		created, updated, confirmed, unsubAt sql.NullInt64
	)
	if err := sc.Scan(&s.ListID, &s.ContactID, &s.Status, &s.Source, &created, &updated, &confirmed, &unsubAt); err != nil {
		return s, err
	}
	s.CreatedAt = fromMicros(created.Int64)
	s.UpdatedAt = fromMicros(updated.Int64)
	s.ConfirmedAt = fromMicros(confirmed.Int64)
	s.UnsubscribedAt = fromMicros(unsubAt.Int64)
	return s, nil
}

func subscriptionArgs(s *store.Subscription) []any {
	return []any{s.ListID, s.ContactID, s.Status, s.Source, micros(s.CreatedAt), micros(s.UpdatedAt),
		nullMicros(s.ConfirmedAt), nullMicros(s.UnsubscribedAt)}
}

func consentArgs(r *store.ConsentRecord) []any {
	return []any{r.ContactID, r.ListID, r.Action, r.Source, r.IP, r.UserAgent, r.Wording, micros(r.At)}
}

func scanList(sc scanner) (store.List, error) {
	var (
		l                store.List
		public, doi      bool
		created, updated int64
		sub, pend, unsub int64
	)
	if err := sc.Scan(&l.ID, &l.Name, &l.Description, &public, &doi, &l.Wording, &created, &updated,
		&sub, &pend, &unsub); err != nil {
		return l, err
	}
	l.Public, l.DoubleOptIn = public, doi
	l.CreatedAt, l.UpdatedAt = fromMicros(created), fromMicros(updated)
	l.Subscribed, l.Pending, l.Unsubscribed = int(sub), int(pend), int(unsub)
	return l, nil
}

// queryAll runs q in the write transaction and reads every row with scan.
func queryAll[T any](t *wtx, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, v)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

func jsonStrings(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(s) // strings always marshal
	return string(b)
}

// ContactsUpsert implements store.Audience: one write operation for the whole batch.
func (s *Store) ContactsUpsert(ctx context.Context, p store.ContactsUpsertParams) ([]store.ContactUpsertResult, error) {
	if len(p.Items) == 0 {
		return nil, nil
	}
	keys, exts, ids := driverkit.UpsertKeys(p.Items)
	keysArg, extsArg, idsArg := jsonStrings(keys), jsonStrings(exts), jsonStrings(ids)
	needLists := driverkit.UpsertNeedsLists(p.Items)
	var (
		results  []store.ContactUpsertResult
		reported int
	)
	err := s.w.do(ctx, len(p.Items), func(t *wtx) error {
		var err error
		results, reported, err = s.upsertContacts(t, p.Items, keysArg, extsArg, idsArg, needLists, p.Now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: upserting contacts: %w", err)
	}
	s.webhooksWritten(reported)
	return results, nil
}

// upsertContacts applies a batch of upserts in the transaction t: keys, exts and ids are the
// JSON arrays of driverkit.UpsertKeys, needLists whether any item changes subscriptions. It
// returns the results and how many webhook deliveries the subscription changes wrote (for
// webhooksWritten after the commit).
func (s *Store) upsertContacts(t *wtx, items []store.ContactUpsert, keys, exts, ids string, needLists bool,
	now time.Time) ([]store.ContactUpsertResult, int, error) {
	existing, err := queryAll(t, qContactsByKeys, []any{keys, exts, ids}, scanContact)
	if err != nil {
		return nil, 0, fmt.Errorf("loading contacts: %w", err)
	}
	var subs []store.Subscription
	if len(existing) > 0 && needLists {
		ids := make([]string, len(existing))
		for i, c := range existing {
			ids[i] = c.ID
		}
		if subs, err = queryAll(t, qSubscriptionsOf, []any{jsonStrings(ids)}, scanSubscription); err != nil {
			return nil, 0, fmt.Errorf("loading subscriptions: %w", err)
		}
	}
	lists := map[string]driverkit.ListInfo{}
	if needLists {
		if lists, err = s.listInfos(t); err != nil {
			return nil, 0, err
		}
	}
	plan := driverkit.PlanUpsert(items, existing, subs, lists, now)
	err = s.writePlan(t, &plan)
	return plan.Results, plan.Reported, err
}

func (s *Store) listInfos(t *wtx) (map[string]driverkit.ListInfo, error) {
	rows, err := t.query(qListInfos)
	if err != nil {
		return nil, fmt.Errorf("loading lists: %w", err)
	}
	lists := map[string]driverkit.ListInfo{}
	for rows.Next() {
		var (
			id string
			li driverkit.ListInfo
		)
		if err := rows.Scan(&id, &li.DoubleOptIn, &li.Wording); err != nil {
			rows.Close()
			return nil, err
		}
		lists[id] = li
	}
	return lists, errors.Join(rows.Err(), rows.Close())
}

// writePlan writes an upsert plan in the order driverkit.UpsertPlan gives.
func (s *Store) writePlan(t *wtx, plan *driverkit.UpsertPlan) error {
	for i := range plan.Updates {
		c := &plan.Updates[i]
		q, args := qContactUpdate, []any{c.ID, c.Email, c.Name, c.Locale, c.Timezone, attributesText(c.Attributes),
			nullMicros(c.LastActiveAt), micros(c.UpdatedAt)}
		if c.Keys {
			q, args = qContactUpdateKeys, []any{c.ID, c.Email, c.EmailKey, nullString(c.ExternalID), c.Name, c.Locale,
				c.Timezone, attributesText(c.Attributes), nullMicros(c.LastActiveAt), micros(c.UpdatedAt)}
		}
		if _, err := t.exec(q, args...); err != nil {
			return fmt.Errorf("contact %s: %w", c.ID, err)
		}
	}
	var stmts []insertStmt
	if len(plan.Inserts) > 0 {
		rows := make([][]any, len(plan.Inserts))
		for i, c := range plan.Inserts {
			rows[i] = contactArgs(c)
		}
		stmts = multiInsert(stmts, qContactInsertInto, contactColumnCount, rows)
	}
	if len(plan.Subscriptions) > 0 {
		rows := make([][]any, len(plan.Subscriptions))
		for i, sub := range plan.Subscriptions {
			rows[i] = subscriptionArgs(sub)
		}
		stmts = multiInsert(stmts, qSubscriptionPutInto, subscriptionColumnCount, rows)
	}
	if len(plan.Consents) > 0 {
		rows := make([][]any, len(plan.Consents))
		for i := range plan.Consents {
			rows[i] = consentArgs(&plan.Consents[i])
		}
		stmts = multiInsert(stmts, qConsentInsertInto, 8, rows)
	}
	for _, st := range stmts {
		if _, err := t.exec(st.query, st.args...); err != nil {
			return err
		}
	}
	var err error
	plan.Reported, err = s.outboxWrite(t, plan.Now, plan.Reports)
	return err
}

// contactRef returns the query and argument finding ref.
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
	c, err := readOne(ctx, s, q, []any{arg}, scanContact)
	if errors.Is(err, sql.ErrNoRows) {
		return c, driverkit.ContactRefError(ref)
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: contact %s: %w", driverkit.RefString(ref), err)
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
	q, args := qContactList, []any{after, limit + 1}
	switch {
	case p.ListID != "" && p.SubscriptionStatus != "":
		q, args = qContactListOfListStatus, append(args, p.ListID, p.SubscriptionStatus)
	case p.ListID != "":
		q, args = qContactListOfList, append(args, p.ListID)
	}
	page, err := readAll(ctx, s, q, args, scanContact)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: listing contacts: %w", err)
	}
	page, next := driverkit.ContactPage(page, limit)
	return page, next, nil
}

// contactInTx finds ref in the write transaction.
func contactInTx(t *wtx, ref store.ContactRef) (store.Contact, error) {
	q, arg := contactRef(ref)
	cs, err := queryAll(t, q, []any{arg}, scanContact)
	if err != nil {
		return store.Contact{}, err
	}
	if len(cs) == 0 {
		return store.Contact{}, driverkit.ContactRefError(ref)
	}
	return cs[0], nil
}

// ContactDelete implements store.Audience.
func (s *Store) ContactDelete(ctx context.Context, p store.ContactDeleteParams) error {
	if p.Erase && p.ErasedKey == "" {
		return errors.New("sqlite: erasing a contact needs its ErasedKey")
	}
	err := s.w.do(ctx, 1, func(t *wtx) error {
		c, err := contactInTx(t, p.Ref)
		if err != nil {
			return err
		}
		if _, err := t.exec(qContactDelete, c.ID); err != nil {
			return err
		}
		if !p.Erase {
			return nil
		}
		return s.erase(t, c, p)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("sqlite: deleting contact %s: %w", driverkit.RefString(p.Ref), err)
	}
	return nil
}

// erase removes what the messages, idempotency records and suppressions hold of c, and
// suppresses its ErasedKey.
func (s *Store) erase(t *wtx, c store.Contact, p store.ContactDeleteParams) error {
	addrs := driverkit.ErasedAddresses(c)
	addrsArg := jsonStrings(addrs)
	msgs, err := queryAll(t, qEraseMessages, []any{addrsArg}, scanMessage)
	if err != nil {
		return fmt.Errorf("finding messages: %w", err)
	}
	now := micros(p.Now)
	for _, m := range msgs {
		// A message still waiting is cancelled: its MIME goes.
		if m.Status.Cancellable() {
			cancelled, err := queryAll(t, qMessageCancel, []any{now, m.ID}, scanMessage)
			if err != nil {
				return err
			}
			if len(cancelled) == 0 {
				// Not reported to webhooks: the report would carry the address being erased.
				if _, _, err := s.cancelSplit(t, m.ID, m.Status, p.Now, false); err != nil {
					return err
				}
			} else if _, err := t.exec(qEventInsert, m.ID, store.EventCancelled, now, nil); err != nil {
				return err
			}
		}
		driverkit.EraseMessage(&m, addrs)
		j, err := driverkit.EncodeMessageJSON(&m)
		if err != nil {
			return err
		}
		if _, err := t.exec(qEraseMessageUpdate, m.ID, rawJSONText(j.To), rawJSONText(j.Cc), rawJSONText(j.Bcc),
			m.ReplyTo, m.Subject, nil, nil, nil, rawJSONText(j.Recipients), addrsArg, now); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		for _, q := range []string{qEraseRecipients, qEraseEvents} {
			if _, err := t.exec(q, m.ID, addrsArg); err != nil {
				return fmt.Errorf("message %s: %w", m.ID, err)
			}
		}
		if _, err := t.exec(qEraseRaw, m.ID); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		if _, err := t.exec(qEraseIdempotency, m.APIKeyID, m.IdempotencyKey, addrsArg); err != nil {
			return err
		}
	}
	if len(msgs) == 0 {
		if _, err := t.exec(qEraseIdempotencyAny, addrsArg); err != nil {
			return err
		}
	}
	if _, err := t.exec(qEraseSuppressions, addrsArg); err != nil {
		return err
	}
	// The contact's application events (their data may name the person), with their actions.
	if _, err := t.exec(qEraseAppEvents, c.ID); err != nil {
		return err
	}
	if _, err := t.exec(qEraseWebhookDeliveries, c.ID, addrsArg); err != nil {
		return err
	}
	sup, err := driverkit.CheckSuppression(driverkit.ErasedSuppression(p.ErasedKey, p.Now))
	if err != nil {
		return err
	}
	_, err = t.exec(qSuppressionUpsert, suppressionArgs(sup)...)
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
		return nil, fmt.Errorf("sqlite: subscriptions of %s: %w", c.ID, err)
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
			at int64
		)
		err := sc.Scan(&r.ID, &r.ContactID, &r.ListID, &r.Action, &r.Source, &r.IP, &r.UserAgent, &r.Wording, &at)
		r.At = fromMicros(at)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: consent of %s: %w", c.ID, err)
	}
	return recs, nil
}

// ListCreate implements store.Audience.
func (s *Store) ListCreate(ctx context.Context, l store.List) (store.List, error) {
	if err := driverkit.CheckList(l); err != nil {
		return l, fmt.Errorf("sqlite: %w", err)
	}
	if l.UpdatedAt.IsZero() {
		l.UpdatedAt = l.CreatedAt
	}
	err := s.w.do(ctx, 1, func(t *wtx) error {
		_, err := t.exec(qListInsert, l.ID, l.Name, l.Description, l.Public, l.DoubleOptIn, l.Wording,
			micros(l.CreatedAt), micros(l.UpdatedAt))
		return err
	})
	if err != nil {
		return l, fmt.Errorf("sqlite: creating list %s: %w", l.ID, err)
	}
	return s.ListGet(ctx, l.ID)
}

// ListGet implements store.Audience.
func (s *Store) ListGet(ctx context.Context, id string) (store.List, error) {
	l, err := readOne(ctx, s, qListGet, []any{id}, scanList)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("list %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("sqlite: list %s: %w", id, err)
	}
	return l, nil
}

// ListList implements store.Audience.
func (s *Store) ListList(ctx context.Context) ([]store.List, error) {
	ls, err := readAll(ctx, s, qListList, nil, scanList)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing lists: %w", err)
	}
	return ls, nil
}

// ListUpdate implements store.Audience.
func (s *Store) ListUpdate(ctx context.Context, l store.List, now time.Time) (store.List, error) {
	if err := driverkit.CheckList(l); err != nil {
		return l, fmt.Errorf("sqlite: %w", err)
	}
	var n int64
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qListUpdate, l.ID, l.Name, l.Description, l.Public, l.DoubleOptIn, l.Wording, micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return l, fmt.Errorf("sqlite: updating list %s: %w", l.ID, err)
	}
	if n == 0 {
		return l, fmt.Errorf("list %s: %w", l.ID, store.ErrNotFound)
	}
	return s.ListGet(ctx, l.ID)
}

// ListDelete implements store.Audience.
func (s *Store) ListDelete(ctx context.Context, id string) error {
	var n int64
	err := s.w.do(ctx, 1, func(t *wtx) error {
		res, err := t.exec(qListDelete, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: deleting list %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("list %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// subscriptionInTx loads what a change of one subscription needs: the list, the contact and the
// subscription (nil when none).
func subscriptionInTx(t *wtx, listID string, ref store.ContactRef) (driverkit.ListInfo, store.Contact, *store.Subscription, error) {
	var li driverkit.ListInfo
	err := t.queryRow(qListInfo, []any{listID}, &li.DoubleOptIn, &li.Wording)
	if errors.Is(err, sql.ErrNoRows) {
		return li, store.Contact{}, nil, fmt.Errorf("list %s: %w", listID, store.ErrNotFound)
	}
	if err != nil {
		return li, store.Contact{}, nil, err
	}
	c, err := contactInTx(t, ref)
	if err != nil {
		return li, c, nil, err
	}
	subs, err := queryAll(t, qSubscriptionGet, []any{listID, c.ID}, scanSubscription)
	if err != nil || len(subs) == 0 {
		return li, c, nil, err
	}
	return li, c, &subs[0], nil
}

// putSubscription writes a changed subscription of the contact whose address is email, its
// consent record and its webhook report, and returns the number of deliveries written.
func (s *Store) putSubscription(t *wtx, sub *store.Subscription, email string, rec *store.ConsentRecord) (int, error) {
	if _, err := t.exec(valuesQuery(qSubscriptionPutInto, subscriptionColumnCount, 1), subscriptionArgs(sub)...); err != nil {
		return 0, err
	}
	if _, err := t.exec(valuesQuery(qConsentInsertInto, 8, 1), consentArgs(rec)...); err != nil {
		return 0, err
	}
	r, ok := driverkit.SubscriptionReport(*sub, email)
	if !ok {
		return 0, nil
	}
	return s.outboxWrite(t, rec.At, []outboxEvent{r})
}

// SubscriptionSet implements store.Audience.
func (s *Store) SubscriptionSet(ctx context.Context, p store.SubscriptionSetParams) (store.SubscriptionSetResult, error) {
	if p.Status != store.SubscriptionSubscribed && p.Status != store.SubscriptionUnsubscribed {
		return store.SubscriptionSetResult{}, fmt.Errorf("sqlite: subscription status %q", p.Status)
	}
	var (
		res     store.SubscriptionSetResult
		written int
	)
	err := s.w.do(ctx, 1, func(t *wtx) error {
		written = 0
		li, c, cur, err := subscriptionInTx(t, p.ListID, p.Contact)
		if err != nil {
			return err
		}
		next, action, kept := driverkit.ChangeSubscription(cur, li, p.Status, p.Resubscribe, p.Confirmed, p.Consent.Source, p.Now)
		next.ListID, next.ContactID = p.ListID, c.ID
		res = store.SubscriptionSetResult{Subscription: next, Kept: kept, Changed: action != ""}
		if action == "" {
			return nil
		}
		written, err = s.putSubscription(t, &next, c.Email, &store.ConsentRecord{ContactID: c.ID, ListID: p.ListID,
			Action: action, Consent: p.Consent, Wording: li.Wording, At: p.Now})
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return res, err
		}
		return res, fmt.Errorf("sqlite: subscription of %s to %s: %w", driverkit.RefString(p.Contact), p.ListID, err)
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
	err := s.w.do(ctx, 1, func(t *wtx) error {
		written = 0
		li, ct, cur, err := subscriptionInTx(t, listID, store.ContactRef{ID: contactID})
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
		written, err = s.putSubscription(t, &next, ct.Email, &store.ConsentRecord{ContactID: contactID, ListID: listID,
			Action: action, Consent: c, Wording: li.Wording, At: now})
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return sub, err
		}
		return sub, fmt.Errorf("sqlite: confirming the subscription of %s to %s: %w", contactID, listID, err)
	}
	s.webhooksWritten(written)
	return sub, nil
}
