// Package fallback is the publish path's last line of defence: when a send
// still fails after its retries, the message is written to a durable queue
// (a queue.Queue of pkg/queue, in practice the SQL table of adapters/sqlstore)
// instead of being lost, and a Relay resends it later and deletes the row once
// the broker took it. The package depends on the pkg/queue interfaces only,
// never on an adapter: the Outbox needs a queue.TxQueue (inserts inside the
// caller's *sql.Tx).
//
// Where it sits (outermost first):
//
//	async.Publisher( fallback.Publisher( retry.Publisher( broker ) ) )
//	fallback.Relay: store --> retry.Publisher( broker ), delete on success
//
// Three pieces:
//
//   - Publisher wraps a publisher. A retryable send failure stores the
//     messages and returns nil; a permanent error (policy.Permanent) or bad
//     input is returned and nothing is stored; if the store write fails too,
//     Publish returns a NotStoredError naming both causes (ErrNotStored). It
//     also serves as the async publisher's leftovers target.
//   - Outbox writes messages into the store inside the caller's *sql.Tx, so
//     they exist if and only if the business transaction commits.
//   - Relay polls due rows, publishes them, deletes them on success,
//     reschedules them under its policy.Policy on failure and, after the last
//     attempt or on a permanent error, moves them to a poison queue (or
//     topic) with the reason. When sends keep failing it stops working
//     through batches and probes the broker with one row at a time. When its
//     publisher is closed (policy.ErrClosed), Run stops with
//     ErrPublisherClosed and leaves every row as it was.
//
// # Delivery guarantees
//
// At-least-once, with the message UUID unchanged from the first send through
// the row, the relay's resend and the poison store. Losses: none once Publish
// returned nil (the message was sent or its row committed). A Publish that
// returned an error leaves the message to the caller. Duplicates happen when a
// send failed after the broker stored the message (timeouts), when a
// multi-message Publish partly succeeded before failing (all of it is
// stored, except the messages the error reports as accepted, by position),
// when a relay crashes or loses its database between sending and deleting (at
// most one claimed batch), and when a relay's lease expires
// while it still works on the rows. Consumers deduplicate by UUID.
// Ordering is not preserved for messages that went through the store.
package fallback
