// Package sqlstore is a durable message queue in one SQL table, for
// PostgreSQL, MySQL/MariaDB and SQLite, over database/sql.
//
// It is the storage under the fallback relay (messages the broker did not take,
// and outbox writes) and under durable consumer redelivery (messages waiting
// for their next attempt). Each row holds a message — topic, UUID, payload,
// metadata — and its delivery state: attempts, next attempt time, first and
// last error, creation time, and the current lease. A Queue column lets several
// users share one table.
//
// Store implements the interfaces of pkg/queue (Queue, TxQueue, Inspector),
// through which the middleware uses it without importing this package;
// Message, ClaimRequest, Stats and Filter are aliases of the queue types, and
// the bad-input sentinels and ErrNotFound are the queue package's values.
//
// The life of a row: Insert (or InsertTx inside the caller's transaction, for
// the outbox pattern) creates it; Claim leases due rows to one worker; the
// worker then Deletes the row (done), Reschedules it (failed: attempts+1, due
// again later) or Requeues it (not tried). A lease that is never released ends
// after LeaseTimeout and the row can be claimed again. For operators and
// tools, Get reads one row by id, List pages through rows with filters (queue,
// topic, age, error text), Stats reports the backlog and the oldest row, and
// TableExists tells a missing table from an unreachable database.
//
// Inbox (inbox.go) is a second, separate table: the processed-message
// records of middleware/inbox, keyed by consumer group, handler and message
// UUID, written in a transaction the handler shares so that its writes and
// the record commit together (pkg/inbox.Store). NewInbox, InboxSchemaSQL and
// Inbox.InitializeSchema create and check it the way New, SchemaSQL and
// InitializeSchema do for the queue table.
//
// Why not watermill-sql's subscriber: its model is an append-only log with a
// consumer-group offset. Rows are never deleted, a message cannot be made due
// later than its neighbours, and there is no per-row lease, so "claim, then
// delete or reschedule, and recover from a crashed claimer" cannot be
// expressed with it. docs/sql-store.md gives the details and the SQL.
//
// # Delivery guarantees
//
// A write that returned nil is committed; nothing is removed except by Delete.
// Claims are exclusive while the lease lasts (FOR UPDATE SKIP LOCKED on
// PostgreSQL and MySQL/MariaDB; SQLite serialises writers). After a lease
// expires another worker may claim the row while the first still works on
// it: that is the one source of duplicates, so choose LeaseTimeout longer than
// a claimed batch takes. Claim returns rows in next-attempt order; there is no
// ordering guarantee across claimers.
//
// # Input validation
//
// Table names must match ^[a-zA-Z_][a-zA-Z0-9_]{0,62}$ and are the only names
// put into SQL text; topics must match ^[a-zA-Z0-9._%|:/-]{1,255}$ and, like
// every other value, travel as bind parameters. UUIDs and metadata follow the
// rules every reliamq publisher shares (pkg/msgcheck): no empty UUID, no NUL,
// \x01 or \x02 in metadata. Bad input returns a typed error (ErrInvalidTable,
// ErrInvalidTopic, ErrInvalidQueue, ErrInvalidMessage, ErrInvalidMetadata)
// before any SQL runs; database failures match ErrStoreUnavailable. New
// without AutoInitialize returns ErrMissingTable when the table or one of its
// columns is missing. A Publisher with a Checker also refuses what the
// publisher its rows are meant for would refuse.
//
// # Prepared statements
//
// A Store prepares the statements it runs on its database (insert, claim,
// delete, reschedule, requeue, stats, get) once and reuses them: at most 64
// per Store, least recently used out, and database/sql prepares each again on
// every pooled connection it uses. They stay prepared until evicted or the
// database is closed (on MySQL they count against max_prepared_stmt_count).
// List, the schema statements and the writes in a caller's transaction
// (InsertTx, DeleteTx) are not prepared.
//
// # Time
//
// Times come from the configured clock.Clock and are stored as Unix
// microseconds (BIGINT) in UTC, which compares the same way in every dialect
// and needs no driver time-zone settings.
package sqlstore
