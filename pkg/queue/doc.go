// Package queue defines the durable queue the middleware stores messages in:
// a Row, the Queue interface the fallback Publisher, Relay and Durable
// redelivery use (insert, claim with a lease, delete, reschedule, requeue,
// stats), TxQueue for writes inside the caller's SQL transaction (the
// outbox, and the relay's atomic move to a poison queue), and Inspector for
// operators (list, get).
//
// The package is a leaf: it imports the standard library and Watermill's
// message package only. adapters/sqlstore implements every interface; the
// middleware depends on this package, never on the adapter, so a program
// links the SQL drivers only when it builds a store.
//
// Implementations report bad input with errors matching ErrInvalidTopic,
// ErrInvalidQueue, ErrInvalidMessage or ErrInvalidMetadata (never retried),
// and a missing row with ErrNotFound.
package queue
