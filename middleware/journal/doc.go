// Package journal is the crash-safe alternative to the async pool: Publish
// returns once the messages are committed to a durable local journal (a
// queue.Queue, in practice an SQLite file through adapters/sqlstore), and
// relays — the fallback.Relay loop, with its policy, concurrency, outage
// probing and poison queue — send the journal's rows through the inner
// publisher and delete them. Nothing Publish accepted lives only in memory,
// so killing the process loses nothing; the next start sends what the dead
// run left.
//
// Where it sits (outermost first), next to the default stack:
//
//	async.Publisher( fallback.Publisher( retry.Publisher( broker ) ) )   in memory until sent
//	journal.Publisher( broker )                                           durable before Publish returns
//	  journal relays: journal queue --> broker, delete on success
//
// The inner publisher is normally the broker publisher itself, as for a
// fallback.Relay: the relay's Policy spaces the retries of a row and its
// outage detection probes a down broker with one row at a time. The same
// mode is async.Config.Journal, for code written against the async
// publisher.
//
// Group commit: concurrent Publish calls are written together. The calls
// waiting for a commit queue up; one of them at a time, the leader, takes
// the waiting calls, oldest first, while they fit in MaxBatch messages,
// inserts their rows in one transaction, answers each caller and hands the
// lead to the oldest call still waiting. A lone call commits on its own
// goroutine, with no hand-over. A leader whose last commit answered other
// callers yields once before it takes the group, so that those callers,
// runnable but perhaps not yet running, join it with their next calls
// (without that, 8 producers on 2 cores shared commits 1.2 calls at a time,
// with it 6). Each commit wakes the relays
// (fallback.Relay.Notify), so a message is sent as soon as it is committed,
// not a poll interval later. A single producer pays one commit per call;
// many producers share them.
//
// # The journal file
//
// Open the file with sqlite.Open (adapters/sqlstore/sqlite: WAL journaling,
// one connection) and give it a table of its own or the journal's queue
// ("journal") in a shared one:
//
//	db, _ := sqlite.Open("/var/lib/app/journal.db")
//	_, _ = db.Exec("PRAGMA synchronous=NORMAL") // see below
//	st, _ := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, Table: "reliamq_journal", AutoInitialize: true}, logger)
//	pub, _ := journal.New(broker, journal.Config{Store: st}, logger)
//
// Durability is SQLite's synchronous setting. sqlite.Open leaves SQLite's
// default, FULL: each commit is synced to disk, so a committed message
// survives a power loss or an operating-system crash too, at the cost of a
// disk flush per commit (measured here: about 290 µs per single-message
// commit against 50 µs). NORMAL, in WAL mode, survives the death of the
// process (a kill -9, a panic, an out-of-memory kill): the commit is in the
// operating system's cache when Publish returns; a power loss can take the
// last commits back (never corrupting the file). Choose FULL when losing the
// last milliseconds of messages on a power cut is not acceptable. The pragma
// above holds for the connection sqlite.Open keeps; should that connection
// ever be reopened, SQLite's default FULL (the safer setting) applies again.
//
// On PostgreSQL or MySQL the journal works the same (sqlstore.Postgres,
// sqlstore.MySQL), at a network round trip per commit; several processes may
// then share one table, each with its own Queue (or Owner).
//
// # Delivery guarantees
//
// At-least-once. Publish returns nil only after every message of the call is
// committed (one transaction with the other calls of its group); from then on
// a relay owns it: it is deleted only after the inner publisher accepted it,
// retried under Relay.Policy (by default for ever, with backoff) and moved to
// the poison queue (Queue+"/poison", "journal/poison") after a permanent
// error or when the policy gives up. Losses: none once Publish returned nil,
// whatever happens to the process (with synchronous FULL, to the machine); a
// Publish that returned an error (ErrNotJournaled: the commit failed; bad
// input; ErrClosed) leaves the message with the caller. Duplicates, all with
// the message's UUID: a process that dies between a send and the delete of
// its row sends that row again after the restart, at most the rows its relays
// had claimed, Relays × Relay.BatchSize (2 × 100) per crash; a send the inner
// publisher reported as failed although the broker stored it (a timeout) is
// sent again; when the database lost the answer to a commit, Publish returns
// an error although the rows may exist. Ordering: none between calls (the
// relays send Relays × Relay.Concurrency messages at once); Relays 1 with
// Relay.Concurrency 1 sends in commit order while nothing fails. The
// Publisher is safe for concurrent use; the inner publisher must be too.
//
// Restart: New makes due at once every row a previous run of the same Owner
// left, those its relays held leased (the store's lease would otherwise hide
// them for LeaseTimeout, 30 s) and those waiting for a retry, then starts the
// relays. Close stops intake, waits up to CloseTimeout for the journal to
// empty, stops the relays and closes the inner publisher; what is left stays
// in the file for the next start.
//
// Operations: the journal is a table of the SQL store, so `reliamq fallback
// ls|show|replay|purge --dsn sqlite:///path --table reliamq_journal --queue
// journal` (or --queue journal/poison) list and replay it as they do the
// fallback table.
//
// # Cost
//
// The async pool answers once the call is in memory; the journal, once it is
// committed. Each Publish waits for a commit (shared with the calls waiting
// at that moment), and on SQLite the commits, the relays' claims and their
// deletes take turns on one connection. The store keeps its statements
// prepared, so a commit does not parse SQL, and on SQLite a commit runs
// without a context deadline unless Config.StoreTimeout is set (the driver
// watches a cancellable context with a goroutine per statement; SQLite's
// busy timeout bounds the commit instead, see Config.StoreTimeout). A single
// producer waits for one single-message commit per call: about 26 µs in a
// loop with synchronous NORMAL on the machine below (three WAL page writes
// and the WAL locks, mostly CPU in SQLite), against the 23 µs per message at
// which the async pool's 50 workers drain a 1 ms broker; that bounds the
// single producer to about half of the async pool here. Several producers
// share commits and reach more than half of it.
// BenchmarkJournal_vs_async, end-to-end msgs/s until Close returned, median
// of 6 runs, journal (NORMAL) / async with the same inner publisher and 50
// sends at once in both, on 2 cores (docs/benchmarks.md has the conditions):
//
//	go test -run '^$' -bench 'Journal_vs_async' -count 6 ./middleware/journal
//
//	inner publisher                     producers  async    journal  ratio (per-run range)
//	fake broker, 1 ms per send          1          43,345   21,879   0.50 (0.46-0.53)
//	fake broker, 1 ms per send          8          49,460   28,050   0.57 (0.55-0.58)
//	RocketMQ adapter, embedded broker   1          36,545   18,825   0.52 (0.48-0.59)
//	RocketMQ adapter, embedded broker   8          42,980   22,497   0.52 (0.47-0.54)
//
// With synchronous FULL the journal made 4-25 % of the async pool (a disk
// flush per commit, claim and delete). Choose the journal where a crash must
// not lose a message, and the async pool where throughput matters more.
package journal
