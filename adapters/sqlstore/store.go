package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/queue"
)

// insertChunk is how many rows one INSERT statement carries. 100 rows x 10
// parameters stays far below every dialect's parameter limit.
const insertChunk = 100

// idChunk is how many ids one DELETE/UPDATE ... IN (...) statement carries.
const idChunk = 500

// Store implements the queue interfaces of pkg/queue (Queue, TxQueue,
// Inspector), which the middleware depends on.
var (
	_ queue.TxQueue   = (*Store)(nil)
	_ queue.Inspector = (*Store)(nil)
)

// Store is a durable queue of messages in one SQL table. It is safe for
// concurrent use, also by several processes on one database.
//
// Delivery guarantees: a row written by Insert (or by a committed InsertTx)
// stays until Delete removes it. Claim hands a due row to one claimer at a time
// until its lease ends; a claimer that dies without Delete, Reschedule or
// Requeue only delays the row by LeaseTimeout. A claimer that outlives its lease
// may work on a row that another claimer has also claimed, so consumers of
// claimed rows must tolerate duplicates (at-least-once).
type Store struct {
	db      *sql.DB
	dialect Dialect
	table   string
	lease   time.Duration
	clock   clock.Clock
	owner   string
	q       queries
	stmts   *stmtCache
	logger  watermill.LoggerAdapter
}

// New returns a Store over cfg.DB. With cfg.AutoInitialize it creates the
// table and index if they do not exist; without, it checks that the table and
// its columns exist and returns an error matching ErrMissingTable when they
// do not (a database that does not answer is logged, not refused).
func New(cfg Config, logger watermill.LoggerAdapter) (*Store, error) {
	if err := nilcheck.Optional(ErrInvalidConfig, "Clock", cfg.Clock); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	s := &Store{
		db:      cfg.DB,
		dialect: cfg.Dialect,
		table:   cfg.Table,
		lease:   cfg.LeaseTimeout,
		clock:   cfg.Clock,
		owner:   cfg.Owner,
		q:       newQueries(cfg.Dialect, cfg.Table),
		stmts:   newStmtCache(cfg.DB),
		logger:  logger.With(watermill.LogFields{"component": "sqlstore", "table": cfg.Table}),
	}
	if cfg.AutoInitialize {
		if err := s.InitializeSchema(context.Background()); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.checkTable(); err != nil {
		return nil, err
	}
	return s, nil
}

// tableCheckTimeout bounds the table check of New.
const tableCheckTimeout = 10 * time.Second

// checkTable makes sure, in New, that the table and every column the Store
// uses exist: otherwise the first write would fail only when it is needed,
// during a broker outage, and its message would be lost. A database that does
// not answer is not an error here (a database outage at start-up is like one
// later: writes report it); only a definite answer that the table or a column
// is missing is.
func (s *Store) checkTable() error {
	ctx, cancel := context.WithTimeout(context.Background(), tableCheckTimeout)
	defer cancel()
	rows, probeErr := s.db.QueryContext(ctx, "SELECT "+columns+" FROM "+s.q.table+" WHERE 1 = 0")
	if probeErr == nil {
		probeErr = rows.Close()
		if probeErr == nil {
			return nil
		}
	}
	exists, err := s.TableExists(ctx)
	switch {
	case err != nil:
		s.logger.Error("Could not check the table at start-up; writes will report it if it is missing", probeErr, nil)
		return nil
	case !exists:
		return fmt.Errorf("%w: table %s does not exist (create it with InitializeSchema or the SQL of SchemaSQL, or set Config.AutoInitialize)",
			ErrMissingTable, s.table)
	}
	return fmt.Errorf("%w: table %s lacks a column the store uses (want %s): %w", ErrMissingTable, s.table, columns, s.wrap("check table", probeErr))
}

// DB returns the database the Store writes to.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns the Store's dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Table returns the table name.
func (s *Store) Table() string { return s.table }

// Owner returns the lease owner used when a ClaimRequest names none.
func (s *Store) Owner() string { return s.owner }

// LeaseTimeout returns how long a claim lasts.
func (s *Store) LeaseTimeout() time.Duration { return s.lease }

// WritesBounded reports whether the Store's writes end within a bound of the
// database's own (queue.BoundedWriter): true on SQLite, whose busy timeout
// (5 s with sqlite.Open; 0, an immediate error, by default) bounds every
// wait for a lock, so a caller may write without a context deadline.
func (s *Store) WritesBounded() bool { return s.dialect == SQLite }

var _ queue.BoundedWriter = (*Store)(nil)

// InitializeSchema creates the table and its index if they do not exist.
func (s *Store) InitializeSchema(ctx context.Context) error {
	stmts, err := SchemaSQL(s.dialect, s.table)
	if err != nil {
		return err
	}
	return s.wrap("initialize schema", createSchema(ctx, s.db, stmts, "SELECT id FROM "+s.q.table+" WHERE 1 = 0"))
}

// createSchema runs the CREATE ... IF NOT EXISTS statements. Two processes
// creating the same table at once can make one of them fail (PostgreSQL
// catalog race); what matters is that the table is there afterwards, which
// probe (a query of the table returning no row) checks.
func createSchema(ctx context.Context, db *sql.DB, stmts []string, probe string) error {
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			if _, perr := db.ExecContext(ctx, probe); perr == nil {
				continue
			}
			return err
		}
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Insert stores msgs atomically: all of them or, on error, none. Zero
// NextAttemptAt and CreatedAt become now. Invalid input is rejected before any
// SQL runs (ErrInvalidTopic, ErrInvalidQueue, ErrInvalidMessage,
// ErrInvalidMetadata).
func (s *Store) Insert(ctx context.Context, msgs ...Message) error {
	args, err := s.insertArgs(msgs)
	if err != nil {
		return err
	}
	if len(msgs) <= insertChunk {
		_, err := s.stmts.exec(ctx, s.q.insert(len(msgs)), args...)
		return s.wrap("insert", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("insert", err)
	}
	if err := s.execInsert(ctx, tx, len(msgs), args); err != nil {
		_ = tx.Rollback()
		return err
	}
	return s.wrap("insert", tx.Commit())
}

// InsertTx stores msgs inside the caller's transaction (outbox writes): the
// rows exist if and only if tx commits. tx must belong to the Store's database.
func (s *Store) InsertTx(ctx context.Context, tx *sql.Tx, msgs ...Message) error {
	if tx == nil {
		return invalid(ErrInvalidMessage, "nil transaction")
	}
	args, err := s.insertArgs(msgs)
	if err != nil {
		return err
	}
	return s.execInsert(ctx, tx, len(msgs), args)
}

func (s *Store) execInsert(ctx context.Context, ex execer, rows int, args []any) error {
	for start := 0; start < rows; start += insertChunk {
		n := min(insertChunk, rows-start)
		if _, err := ex.ExecContext(ctx, s.q.insert(n), args[start*insertParams:(start+n)*insertParams]...); err != nil {
			return s.wrap("insert", err)
		}
	}
	return nil
}

func (s *Store) insertArgs(msgs []Message) ([]any, error) {
	if len(msgs) == 0 {
		return nil, invalid(ErrInvalidMessage, "no messages")
	}
	now := toMicros(s.clock.Now())
	args := make([]any, 0, len(msgs)*insertParams)
	for i := range msgs {
		m := &msgs[i]
		if err := validateMessage(m); err != nil {
			return nil, err
		}
		md, err := encodeMetadata(m.Metadata)
		if err != nil {
			return nil, err
		}
		next, created := now, now
		if !m.NextAttemptAt.IsZero() {
			next = toMicros(m.NextAttemptAt)
		}
		if !m.CreatedAt.IsZero() {
			created = toMicros(m.CreatedAt)
		}
		payload := m.Payload
		if payload == nil {
			payload = []byte{} // NOT NULL column
		}
		args = append(args, m.Queue, m.Topic, m.UUID, payload, md, m.Attempts, next,
			cleanError(m.FirstError), cleanError(m.LastError), created)
	}
	return args, nil
}

// ClaimRequest asks for due rows of one queue (queue.ClaimRequest; Owner
// defaults to Store.Owner()).
type ClaimRequest = queue.ClaimRequest

// Claim leases up to req.Limit rows of req.Queue that are due
// (next_attempt_at <= now) and not leased (or whose lease ended), oldest due
// first, and returns them. Each row stays invisible to other claims for the
// Store's LeaseTimeout, or until Delete, Reschedule or Requeue releases it.
// Concurrent claimers, in this process or others, never receive the same row
// while its lease lasts.
func (s *Store) Claim(ctx context.Context, req ClaimRequest) ([]Message, error) {
	if err := ValidateQueue(req.Queue); err != nil {
		return nil, err
	}
	if req.Owner == "" {
		req.Owner = s.owner
	}
	if len(req.Owner) > 255 {
		return nil, invalid(ErrInvalidMessage, "Owner longer than 255 bytes")
	}
	if req.Limit <= 0 {
		req.Limit = 100
	}
	now := s.clock.Now()
	nowUS, until := toMicros(now), toMicros(now.Add(s.lease))
	var (
		msgs []Message
		err  error
	)
	if s.dialect == MySQL {
		msgs, err = s.claimMySQL(ctx, req, nowUS, until)
	} else {
		msgs, err = s.query(ctx, "claim", s.stmts, s.q.claimReturning(), req.Owner, until, req.Queue, nowUS, nowUS, req.Limit)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(msgs, func(i, j int) bool {
		if !msgs[i].NextAttemptAt.Equal(msgs[j].NextAttemptAt) {
			return msgs[i].NextAttemptAt.Before(msgs[j].NextAttemptAt)
		}
		return msgs[i].ID < msgs[j].ID
	})
	return msgs, nil
}

// claimMySQL needs three statements in one transaction: MySQL has no
// UPDATE ... RETURNING. READ COMMITTED avoids gap locks that would make
// concurrent inserts wait for the claim.
func (s *Store) claimMySQL(ctx context.Context, req ClaimRequest, now, until int64) ([]Message, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, s.wrap("claim", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, s.q.claimSelectMySQL(), req.Queue, now, now, req.Limit)
	if err != nil {
		return nil, s.wrap("claim", err)
	}
	var ids []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return nil, s.wrap("claim", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return nil, s.wrap("claim", err)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("claim", err)
	}
	if len(ids) == 0 {
		return nil, s.wrap("claim", tx.Commit())
	}
	if _, err := tx.ExecContext(ctx, s.q.leaseIDs(len(ids)), append([]any{req.Owner, until}, ids...)...); err != nil {
		return nil, s.wrap("claim", err)
	}
	msgs, err := s.query(ctx, "claim", tx, s.q.selectIDs(len(ids)), ids...)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, s.wrap("claim", err)
	}
	return msgs, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) query(ctx context.Context, op string, qr querier, query string, args ...any) ([]Message, error) {
	rows, err := qr.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer func() { _ = rows.Close() }()
	var msgs []Message
	for rows.Next() {
		var (
			m                          Message
			md                         string
			next, created, leasedUntil int64
		)
		if err := rows.Scan(&m.ID, &m.Queue, &m.Topic, &m.UUID, &m.Payload, &md, &m.Attempts,
			&next, &created, &m.FirstError, &m.LastError, &leasedUntil, &m.LeasedBy); err != nil {
			return nil, s.wrap(op, err)
		}
		if m.Metadata, err = decodeMetadata(md); err != nil {
			// A row edited by hand with broken JSON: keep it visible rather
			// than fail the whole claim.
			s.logger.Error("Stored metadata is not a JSON object; delivering without it", err,
				watermill.LogFields{"row_id": m.ID})
			m.Metadata = map[string]string{}
		}
		if m.Payload == nil {
			m.Payload = []byte{}
		}
		m.NextAttemptAt, m.CreatedAt, m.LeasedUntil = fromMicros(next), fromMicros(created), fromMicros(leasedUntil)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return msgs, nil
}

// Delete removes the rows with ids (those already gone are ignored). This is
// the only way a row leaves the store.
func (s *Store) Delete(ctx context.Context, ids ...int64) error {
	return s.deleteIDs(ctx, s.stmts, ids)
}

// DeleteTx removes the rows with ids inside the caller's transaction.
func (s *Store) DeleteTx(ctx context.Context, tx *sql.Tx, ids ...int64) error {
	if tx == nil {
		return invalid(ErrInvalidMessage, "nil transaction")
	}
	return s.deleteIDs(ctx, tx, ids)
}

func (s *Store) deleteIDs(ctx context.Context, ex execer, ids []int64) error {
	for start := 0; start < len(ids); start += idChunk {
		part := ids[start:min(start+idChunk, len(ids))]
		if _, err := ex.ExecContext(ctx, s.q.delete(idBucket(len(part))), paddedIDArgs(nil, part)...); err != nil {
			return s.wrap("delete", err)
		}
	}
	return nil
}

// Reschedule records a failed attempt on row id: attempts+1, last_error =
// lastErr (also first_error if none was recorded), due again at next, lease
// released. It returns ErrNotFound if the row is gone.
func (s *Store) Reschedule(ctx context.Context, id int64, next time.Time, lastErr string) error {
	lastErr = cleanError(lastErr)
	res, err := s.stmts.exec(ctx, s.q.reschedule(), toMicros(next), lastErr, lastErr, id)
	if err != nil {
		return s.wrap("reschedule", err)
	}
	return s.affected("reschedule", res, id)
}

// Requeue releases the leases of ids and makes them due at next without
// counting an attempt: for rows claimed but not tried (shutdown, a relay
// backing off) and for replaying rows by hand. It returns ErrNotFound if none
// of the rows exists.
func (s *Store) Requeue(ctx context.Context, next time.Time, ids ...int64) error {
	var total int64
	for start := 0; start < len(ids); start += idChunk {
		part := ids[start:min(start+idChunk, len(ids))]
		res, err := s.stmts.exec(ctx, s.q.requeue(idBucket(len(part))), paddedIDArgs([]any{toMicros(next)}, part)...)
		if err != nil {
			return s.wrap("requeue", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return s.wrap("requeue", err)
		}
		total += n
	}
	if total == 0 && len(ids) > 0 {
		return fmt.Errorf("%w: ids %v", ErrNotFound, ids)
	}
	return nil
}

func (s *Store) affected(op string, res sql.Result, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: id %d", ErrNotFound, id)
	}
	return nil
}

// Stats describes one queue (queue.Stats).
type Stats = queue.Stats

// Stats counts the rows of queue.
func (s *Store) Stats(ctx context.Context, queue string) (Stats, error) {
	if err := ValidateQueue(queue); err != nil {
		return Stats{}, err
	}
	now := toMicros(s.clock.Now())
	var st Stats
	var oldest int64
	err := s.stmts.queryRow(ctx, s.q.stats(), now, now, queue).Scan(&st.Backlog, &oldest, &st.Due, &st.Leased)
	if err != nil {
		return Stats{}, s.wrap("stats", err)
	}
	st.Oldest = fromMicros(oldest)
	return st, nil
}

// Filter selects rows for List (queue.Filter). Every value reaches the
// database as a bind parameter, never as SQL text. OlderThan counts on the
// Store's Clock; a negative OlderThan, or an ErrorContains with invalid UTF-8
// or NUL characters, is ErrInvalidFilter. The error columns keep at most
// MaxErrorLen bytes.
type Filter = queue.Filter

func validateFilter(f Filter) error {
	if f.OlderThan < 0 {
		return invalid(ErrInvalidFilter, "OlderThan %v: must not be negative", f.OlderThan)
	}
	if !utf8.ValidString(f.ErrorContains) || strings.ContainsRune(f.ErrorContains, 0) {
		return invalid(ErrInvalidFilter, "ErrorContains: must be UTF-8 without NUL")
	}
	return nil
}

// List returns rows matching f in id order without claiming them.
func (s *Store) List(ctx context.Context, f Filter) ([]Message, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if err := validateFilter(f); err != nil {
		return nil, err
	}
	var (
		conds []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, cond+" "+s.q.ph(len(args)))
	}
	if !f.AllQueues {
		if err := ValidateQueue(f.Queue); err != nil {
			return nil, err
		}
		add("queue =", f.Queue)
	}
	if f.Topic != "" {
		add("topic =", f.Topic)
	}
	if f.UUID != "" {
		add("uuid =", f.UUID)
	}
	if f.OlderThan > 0 {
		add("created_at <=", toMicros(s.clock.Now().Add(-f.OlderThan)))
	}
	if f.ErrorContains != "" {
		args = append(args, f.ErrorContains, f.ErrorContains)
		conds = append(conds, s.q.errorContains(len(args)-1, len(args)))
	}
	add("id >", f.AfterID)
	query := "SELECT " + columns + " FROM " + s.q.table + " WHERE "
	for i, c := range conds {
		if i > 0 {
			query += " AND "
		}
		query += c
	}
	args = append(args, f.Limit)
	query += " ORDER BY id LIMIT " + s.q.ph(len(args))
	return s.query(ctx, "list", s.db, query, args...)
}

// Get returns the row with id, whatever its queue, without claiming it. It
// returns an error matching ErrNotFound when no row has the id.
func (s *Store) Get(ctx context.Context, id int64) (Message, error) {
	msgs, err := s.query(ctx, "get", s.stmts, s.q.get(), id)
	if err != nil {
		return Message{}, err
	}
	if len(msgs) == 0 {
		return Message{}, fmt.Errorf("%w: id %d", ErrNotFound, id)
	}
	return msgs[0], nil
}

// TableExists reports whether the Store's table exists, asking the
// database's catalogue (information_schema in the current schema or database
// for PostgreSQL and MySQL, sqlite_master for SQLite). Unlike a failing query
// on the table, a false answer is not confused with an outage: database
// failures return an error matching ErrStoreUnavailable.
func (s *Store) TableExists(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q.tableExists(), s.table).Scan(&n); err != nil {
		return false, s.wrap("table exists", err)
	}
	return n > 0, nil
}

func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	owner := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	if len(owner) > 255 {
		owner = owner[len(owner)-255:]
	}
	return owner
}
