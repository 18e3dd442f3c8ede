// Package store is postie's persistence boundary: one interface per area of the data, the row and
// parameter types, and the sentinel errors every driver translates its own errors into.
//
// # Areas
//
// Each service takes the slice of the store it uses: delivery a MessageQueue, the template
// catalog a Templates, the API its Messages, Suppressions and APIKeys. Store embeds every area
// (plus Ping and Close); each driver (sqlite, postgres) implements the whole Store and passes one
// conformance suite (storetest), and only app opens a driver. A new area (contacts, campaigns,
// webhooks) declares its own interface, its row and params types and its conformance cases,
// and Store embeds it; existing areas do not grow to carry it. The rules every driver shares
// (checks, defaults, JSON columns, page cutting) live in store/driverkit, which only drivers
// import.
//
// # The message row is the job
//
// A message is accepted by inserting its row (status scheduled or queued) together with the
// rendered MIME. Delivery workers claim due rows in batches with MessageClaim, which moves them to
// sending and stamps a lease (lease_owner, lease_until). The worker reports each outcome with
// MessageFinish, which only applies while the caller still owns the lease. A lease that expires
// (its worker died) is returned to queued by MessageRescue; a node shutting down hands its leases
// back at once with MessageReleaseLeases. Nothing is ever deleted by the delivery cycle.
//
// # Recipients
//
// Each recipient of a message has a state (RecipientStatus), and the message's status is derived
// from them (DeriveStatus). While all of a message's recipients share one outcome, their states
// are the message's own (Status.RecipientState) and nothing per recipient is stored, so the
// common case costs no more than one row. An attempt whose recipients fare differently makes
// the message split (MessageFinishParams.Split): from then on each recipient's state is stored
// and claims return only those still to be sent to (ClaimedMessage.Recipients).
//
// # A state change and its report in one transaction: the outbox
//
// Webhooks and campaigns must learn of a state change (a message sent, a recipient bounced, a
// campaign run finished) exactly when it commits: never a report of a change that rolled back,
// never a change without its report. The decision, for both drivers, is an outbox table written
// by the store method that makes the change, in the same statement or transaction, as the
// timeline events are today. There is no transaction handle (store.Tx) for services to hold.
//
// Why not a transaction handle: a SQLite database has one writer connection whose transactions
// are grouped into shared commits; a transaction held open while service code runs (rendering,
// an HTTP call, a mistake) would stall every writer of the node. On PostgreSQL each step of such
// a transaction is a round trip, while MessageFinish now writes a whole batch of outcomes in one
// statement. A handle would also double every area's methods (with and without a transaction).
// Why not read the timeline (message_events) by id instead: a PostgreSQL sequence number is taken
// before its transaction commits, so a reader that moves past id n can miss a row numbered below
// n that commits later; and the first event of a message is not stored at all (MessagesAccept
// derives it from the row). Work that must be atomic across areas (a campaign chunk creating its
// messages and marking its recipients) is one method of the area that owns the workflow, written
// in one transaction by the driver, not a transaction assembled by the service.
//
// The algorithm the webhook and campaign issues build:
//
//   - Table outbox: id (a sequence: bigserial on PostgreSQL, INTEGER PRIMARY KEY on SQLite),
//     consumer ("webhook", "campaign", …), type (the event type, as in the timeline), subject
//     (the id of what changed: msg_…, cmp_…, ctc_…), recipient (address, "" when not about one),
//     campaign_id, at, detail (the event's typed detail, encoded as the timeline's), lease_owner,
//     lease_until. Table outbox_routes: (consumer, type, campaign_only), the event types each
//     consumer wants; a route exists only while someone listens (a webhook endpoint subscribed
//     to the type, a campaign consumer for its outcome types).
//   - Who writes: the driver, inside every store method that records an event: MessagesAccept
//     (queued, scheduled), MessageFinish, MessageCancel, MessageRetry, MessageRescue,
//     MessageReleaseLeases, and the methods of later areas (DSN and complaint intake, campaign
//     runs, contacts). For each event it writes, it inserts one outbox row per route of that
//     type (campaign_only routes only for messages with a campaign_id), in the same statement
//     (PostgreSQL: one more CTE joining the new events to outbox_routes) or write transaction
//     (SQLite). Services never write outbox rows; a method's doc lists the events it writes, and
//     the outbox follows them. With no route for a type, nothing is written: PostgreSQL pays one
//     lookup of the small routes table per statement, SQLite none (one process owns the file,
//     so the driver keeps the routes in memory, changed only by its own route methods).
//   - Who claims: each consumer, on every node, with OutboxClaim(consumer, owner, limit, now,
//     lease until), the message claim's mechanism: rows of that consumer whose lease is empty or
//     ended, oldest id first, PostgreSQL with FOR UPDATE SKIP LOCKED, SQLite in one write
//     transaction. A consumer finishes rows with a method of its own area that applies their
//     effect and deletes them in one transaction, only while owner still holds their lease: the
//     webhook area inserts one webhook_deliveries row per endpoint subscribed to the type (then
//     claimed by lease, signed, retried over about a day, as DESIGN §11 says); the campaign
//     area updates campaign_recipients and the run's counts. A consumer that dies leaves leases
//     that end, and any node claims the rows again: delivery is at least once.
//   - Ordering: ids follow commit order for one subject, since a subject's changes are
//     serialised (its row lock on PostgreSQL, the one writer on SQLite); across subjects there
//     is no order on PostgreSQL. Consumers claim oldest first but must not rely on order: a
//     webhook delivery carries its outbox id (the Standard Webhooks webhook-id, the same on every
//     retry) and its event time, so receivers can order and deduplicate; the campaign consumer
//     applies an event to a recipient only when its id is above the last one applied to that
//     recipient, which makes replays and reordering harmless.
//   - Retention: a row lives until its consumer finishes it (deleted in that transaction). A
//     route removed while rows of its type wait leaves them to be finished with no effect.
//     Rows no consumer finishes (it is switched off) are deleted by the retention purge once
//     older than the outbox retention (default 7 days), in small batches, counted and logged.
//     webhook_deliveries and the timeline keep their own retention.
//
// All methods take the current time from their parameters (never from the wall clock), so tests
// control time. All methods are safe for concurrent use.
package store
