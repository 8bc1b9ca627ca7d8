// Package inbox is a router middleware that makes a consumer act once per
// message: it records the UUID of every message a handler processed, per
// consumer group and handler, and acknowledges a later copy of a processed
// message (a redelivery, a replay, a duplicate send) without running the
// handler again.
//
// reliamq delivers at least once: a consumer killed between its work and its
// acknowledgement sees the message again (in the crash test of the issue,
// 44 of 200 messages were handled twice). The inbox removes those duplicates
// at the handler.
//
// # Composition
//
// The inbox goes inside middleware/redelivery, next to the handler:
//
//	ib, _ := inbox.New(inbox.Config{ConsumerGroup: "billing", Handler: "charge", Store: st}, logger)
//	defer ib.Close()
//	rd.AddConsumerHandler(router, "orders", sub, ib.ConsumerHandler(charge))
//
// so that a failed run leaves no record and the redelivered copy runs the
// handler again, while a copy of a message that succeeded does not. Only
// successes are recorded. The store is an *sqlstore.Inbox (PostgreSQL,
// MySQL/MariaDB, SQLite) or a *redisinbox.Store; both implement pkg/inbox's
// Store interface, which lives in a leaf package so that adapters implement it
// without importing middleware.
//
// # Exactly-once effects with SQL
//
// With sqlstore.Inbox the middleware opens a transaction, inserts the key
// (consumer group, handler, UUID) with "on conflict do nothing", and puts the
// transaction in the message's context. The handler writes through it:
//
//	func charge(msg *message.Message) error {
//		_, err := inbox.Tx(msg.Context()).ExecContext(msg.Context(), "INSERT INTO charges ...", ...)
//		return err
//	}
//
// The middleware commits when the handler returns nil and rolls back when it
// returns an error or panics. Exact guarantees, per key:
//
//   - The handler's writes through Tx commit if and only if the record
//     commits. So within the retention they are applied at most once,
//     whatever the number of deliveries, crashes (a process killed at any
//     point either committed both or neither) and restarts; with an
//     at-least-once subscriber and redelivery, a message whose handler
//     succeeds is applied exactly once (the crash test counts 0 duplicated
//     and 0 lost effects by UUID after a SIGKILL mid-run).
//   - A copy delivered while another run holds the key waits on the record's
//     row lock (SQLite: its single writer), then is acknowledged as a
//     duplicate if that run committed, or runs if it rolled back. Two runs of
//     one key never overlap.
//   - A failed run (error or panic) records nothing and its writes are rolled
//     back: the redelivered copy runs the handler afresh.
//   - A failed commit is returned to the router (the message is nacked or
//     retried); if the commit happened after all (a lost answer), the next
//     copy is acknowledged as a duplicate.
//
// Not covered: effects outside that transaction — calls to other systems,
// writes to another database, and messages the handler returns for the router
// to publish, which the router publishes after the commit (a crash in between
// loses them; write them with fallback.Outbox.WriteTx(ctx, inbox.Tx(ctx), ...)
// to send them exactly when the effect commits). Do not Commit or Rollback the
// transaction in the handler. The transaction stays open while the handler
// runs: give the database pool a connection per concurrent handler. On
// SQLite (sqlite.Open keeps one connection) handlers run one at a time, and a
// handler that uses the *sql.DB itself instead of Tx waits for ever.
//
// # Redis
//
// redisinbox cannot join the handler's transaction: the record is written
// after the handler succeeded. It guarantees that two runs of one key do not
// overlap while its lease lasts and that a run whose mark was written is not
// repeated within the retention; a crash (or a Redis failure) between the
// handler's effect and the mark lets a later copy run the handler again. Its
// effect is exactly-once only for handlers that are idempotent with respect
// to that window. See the redisinbox package.
//
// # Retention
//
// A record is kept at least Config.Retention (7 days by default): a copy
// arriving later may run the handler again. Expired SQL records are deleted
// in the background every PurgeInterval, PurgeBatch rows per statement with a
// pause between statements, so a purge of millions of rows holds no lock for
// long and handlers keep committing meanwhile; Close stops the purger. Redis
// expires records by itself.
//
// # Dead letters
//
// Only successes are recorded. A message that is dead-lettered can be
// dead-lettered again when a crash made the broker redeliver it (its whole
// retry schedule runs again: over seven runs of the crash test, 20 poison
// messages gave 21 to 32 dead-letter copies, same UUIDs), so a consumer of
// the dead-letter topic deduplicates by UUID (an inbox of its own). A replayed dead letter
// runs the handler, as it should: nothing was recorded for it.
package inbox
