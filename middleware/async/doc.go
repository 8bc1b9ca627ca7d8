// Package async is a message.Publisher decorator that sends in the background:
// Publish queues the call and returns at once, and a bounded pool of workers
// sends it through the inner publisher. It is the outermost reliamq layer on the
// send path:
//
//	async.Publisher( fallback.Publisher( retry.Publisher( broker publisher ) ) )
//
// The pool keeps the seed service's thread-pool knobs, in plain Go: the queue
// is a buffered channel of QueueCapacity (200) calls; CoreWorkers (10) workers
// start with the first calls and stay; when a call finds the queue full while
// every worker is busy sending, an extra worker, up to MaxWorkers (50), starts
// with that call and exits after KeepAlive (30s) without work. (Java's
// executor starts one whenever the queue is full. But a worker that is between
// two sends takes the next queued call in a moment, and with a fast inner
// publisher another goroutine only adds scheduling; under Reject, where the
// call would be refused, the pool does start one.) When no worker can take
// the call, FullPolicy decides: CallerRuns (the default: the caller sends the
// message itself, which slows producers down to the pool's pace), Block (wait
// for room, as long as the message context allows) or Reject (ErrQueueFull).
//
// Every outcome reaches the caller's code: each ResultHook in Config.Hooks
// receives one Result per call that the pool took or the caller ran (success
// or the final error, with the messages), Publish returns an error for every
// call it refused, and Stats counts both. Stats also carries the queue
// capacity and the worker limit after defaults, so Queued/Capacity is the
// queue's saturation (middleware/metrics exports it as
// reliamq_async_queue_fill_ratio).
//
// Cost: Publish checks the messages (pkg/msgcheck), enters and leaves the
// gate that orders it against Close (two atomic adds) and sends on the
// channel; a worker adds one atomic add when it takes a call and one when the
// send ends. A call that nothing will take (CallerRuns) passes a gate of its
// own instead, with one more add for its outcome. The only allocation is the
// detached context of a message whose own context is not
// context.Background (see Contexts). docs/benchmarks.md compares the pool
// with a hand-written channel pool doing the same check.
//
// Contexts: Watermill takes the send context from each message. The caller's
// context typically ends when Publish returns (an HTTP handler's request
// context), so the pool detaches queued messages from it: each keeps the
// values of its context but not its cancellation or deadline. Only Close's
// timeout cancels a queued or in-flight send. A call run by the caller
// (CallerRuns) keeps its own context, since the caller is still waiting.
//
// Close stops intake (Publish returns ErrClosed), waits up to CloseTimeout
// (60s) for queued and in-flight calls, then cancels the sends still in flight
// and hands every call that was not sent to Leftovers (the fallback store), or
// reports it to the ResultHooks with ErrNotSent when there is none. A Publish
// that races Close is either queued, and then sent or handed over like the
// rest, or refused with ErrClosed. No goroutine of the pool is left when Close
// returns.
//
// # Delivery guarantees
//
// At-least-once for every call that the pool sent (Result.Err == nil) or
// handed to Leftovers. Nothing is dropped silently: a call is either refused by
// Publish with an error, or reported exactly once to the ResultHooks. Losses:
// a call whose send failed is reported to them and not retried here (put a
// retry.Publisher and a fallback.Publisher inside); a call that Close could
// neither send nor hand to Leftovers is reported with ErrNotSent; a process
// crash loses everything queued in memory (set Config.Journal, or use the
// fallback store's outbox mode, when that matters: see Journal mode below).
// Duplicates: a send cut off by Close's timeout is handed to Leftovers
// although the broker may have stored it. Ordering:
// none between calls, since several workers send concurrently (use one
// worker, CoreWorkers = MaxWorkers = 1, with Block, for order). The Publisher
// is safe for concurrent use; the inner publisher must be too.
//
// # Journal mode
//
// With Config.Journal set, Publish writes the call to a durable local
// journal (middleware/journal) and returns once it is committed; the
// journal's relays send it through the inner publisher. A process crash
// then loses nothing Publish accepted (duplicates: at most the rows the
// relays had claimed). The pool and Hooks are not used in this mode.
package async
