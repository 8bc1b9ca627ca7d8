package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/inbox"
)

// DefaultInboxTable is the table used when InboxConfig.Table is empty.
const DefaultInboxTable = "reliamq_inbox"

// inboxColumns are the columns Inbox reads and writes.
const inboxColumns = "consumer_group, handler, uuid, processed_at, expires_at"

// InboxConfig configures an Inbox.
type InboxConfig struct {
	// DB is the database. Required. The Inbox never closes it. The
	// handler's writes must go to this database (through inbox.Tx) to
	// commit together with the record.
	DB *sql.DB
	// Dialect of DB: Postgres, MySQL or SQLite. Required.
	Dialect Dialect
	// Table holds the records. Default DefaultInboxTable ("reliamq_inbox").
	// Must match ^[a-zA-Z_][a-zA-Z0-9_]{0,62}$. Every consumer group and
	// handler may share one table.
	Table string
	// AutoInitialize creates the table and its index (IF NOT EXISTS) in
	// NewInbox. Default false: create them with InitializeSchema or with the
	// SQL from InboxSchemaSQL.
	AutoInitialize bool
	// Clock gives the processed and expiry times. Default clock.Real.
	Clock clock.Clock
}

func (c *InboxConfig) setDefaults() {
	if c.Table == "" {
		c.Table = DefaultInboxTable
	}
	c.Clock = clock.OrReal(c.Clock)
}

// Validate reports every problem of the config at once, each error wrapping
// ErrInvalidConfig and naming its field.
func (c InboxConfig) Validate() error {
	return Config{DB: c.DB, Dialect: c.Dialect, Table: c.Table}.Validate()
}

// Inbox records the messages a handler processed (the store of
// middleware/inbox, implementing pkg/inbox.Store) in one SQL table whose
// primary key is (consumer_group, handler, uuid).
//
// Begin opens a transaction and inserts the key, doing nothing on conflict:
// a key already committed makes Begin return inbox.ErrDuplicate; a key
// inserted by a transaction still open makes Begin wait on its row lock
// (PostgreSQL, MySQL/MariaDB; SQLite has one writer) and then see the
// conflict, or insert the key if that transaction rolled back. The handler
// writes through the transaction (Entry.Tx); Commit commits the record and
// those writes together, Abort rolls both back. So a handler's effects in
// this database happen once per key, whatever the number of deliveries, for
// as long as the record is kept.
//
// Records are kept until Purge deletes them after their retention; a record
// past its retention and not yet purged still counts as processed.
type Inbox struct {
	db      *sql.DB
	dialect Dialect
	table   string
	clock   clock.Clock
	q       inboxQueries
	logger  watermill.LoggerAdapter
}

var _ inbox.Store = (*Inbox)(nil)

// NewInbox returns an Inbox over cfg.DB. With cfg.AutoInitialize it creates
// the table and index if they do not exist; without, it checks that the table
// and its columns exist and returns an error matching ErrMissingTable when
// they do not (a database that does not answer is logged, not refused).
func NewInbox(cfg InboxConfig, logger watermill.LoggerAdapter) (*Inbox, error) {
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
	i := &Inbox{
		db: cfg.DB, dialect: cfg.Dialect, table: cfg.Table, clock: cfg.Clock,
		q:      inboxQueries{queries: newQueries(cfg.Dialect, cfg.Table)},
		logger: logger.With(watermill.LogFields{"component": "sqlstore.inbox", "table": cfg.Table}),
	}
	if cfg.AutoInitialize {
		if err := i.InitializeSchema(context.Background()); err != nil {
			return nil, err
		}
		return i, nil
	}
	return i, i.checkTable()
}

// DB returns the database the Inbox writes to.
func (i *Inbox) DB() *sql.DB { return i.db }

// Table returns the table name.
func (i *Inbox) Table() string { return i.table }

// InitializeSchema creates the table and its index if they do not exist.
func (i *Inbox) InitializeSchema(ctx context.Context) error {
	stmts, err := InboxSchemaSQL(i.dialect, i.table)
	if err != nil {
		return err
	}
	return i.wrap("initialize schema", createSchema(ctx, i.db, stmts, "SELECT uuid FROM "+i.q.table+" WHERE 1 = 0"))
}

func (i *Inbox) checkTable() error {
	ctx, cancel := context.WithTimeout(context.Background(), tableCheckTimeout)
	defer cancel()
	rows, probeErr := i.db.QueryContext(ctx, "SELECT "+inboxColumns+" FROM "+i.q.table+" WHERE 1 = 0")
	if probeErr == nil {
		if probeErr = rows.Close(); probeErr == nil {
			return nil
		}
	}
	var n int
	if err := i.db.QueryRowContext(ctx, i.q.tableExists(), i.table).Scan(&n); err != nil {
		i.logger.Error("Could not check the inbox table at start-up", probeErr, nil)
		return nil
	}
	if n == 0 {
		return fmt.Errorf("%w: table %s does not exist (create it with InitializeSchema or the SQL of InboxSchemaSQL, or set InboxConfig.AutoInitialize)",
			ErrMissingTable, i.table)
	}
	return fmt.Errorf("%w: table %s lacks a column the inbox uses (want %s): %w", ErrMissingTable, i.table, inboxColumns, i.wrap("check table", probeErr))
}

// Begin implements inbox.Store: see Inbox. ctx bounds the insert (and so the
// wait for another run of the key); the transaction itself lives until
// Commit or Abort, not until ctx ends: a handler that finished while its
// message's context was being cancelled (a router shutting down) still
// commits its work instead of having it rolled back under it.
func (i *Inbox) Begin(ctx context.Context, key inbox.Key, retention time.Duration) (inbox.Entry, error) {
	if err := inbox.ValidateKey(key); err != nil {
		return nil, err
	}
	tx, err := i.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return nil, i.wrap("inbox begin", err)
	}
	now := i.clock.Now()
	res, err := tx.ExecContext(ctx, i.q.insert(), key.ConsumerGroup, key.Handler, key.UUID,
		now.UnixMicro(), now.Add(retention).UnixMicro())
	if err != nil {
		_ = tx.Rollback()
		return nil, i.wrap("inbox insert", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		_ = tx.Rollback()
		return nil, i.wrap("inbox insert", err)
	}
	if n == 0 {
		_ = tx.Rollback()
		return nil, inbox.ErrDuplicate
	}
	return &inboxEntry{i: i, tx: tx}, nil
}

type inboxEntry struct {
	i  *Inbox
	tx *sql.Tx
}

func (e *inboxEntry) Tx() *sql.Tx { return e.tx }

func (e *inboxEntry) Commit(context.Context) error { return e.i.wrap("inbox commit", e.tx.Commit()) }

func (e *inboxEntry) Abort(context.Context) error {
	if err := e.tx.Rollback(); err != nil && err != sql.ErrTxDone {
		return e.i.wrap("inbox rollback", err)
	}
	return nil
}

// Purge implements inbox.Store: it deletes at most limit records whose
// retention is over, in one short statement that skips rows other
// transactions lock (PostgreSQL; MySQL/MariaDB run it at READ COMMITTED, so
// it locks only the rows it deletes), and returns how many it deleted.
func (i *Inbox) Purge(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, invalid(ErrInvalidConfig, "purge limit %d: must be > 0", limit)
	}
	now := i.clock.Now().UnixMicro()
	var res sql.Result
	var err error
	if i.dialect == MySQL {
		var tx *sql.Tx
		tx, err = i.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		if err != nil {
			return 0, i.wrap("inbox purge", err)
		}
		res, err = tx.ExecContext(ctx, i.q.purge(), now, limit)
		if err != nil {
			_ = tx.Rollback()
			return 0, i.wrap("inbox purge", err)
		}
		err = tx.Commit()
	} else {
		res, err = i.db.ExecContext(ctx, i.q.purge(), now, limit)
	}
	if err != nil {
		return 0, i.wrap("inbox purge", err)
	}
	n, err := res.RowsAffected()
	return int(n), i.wrap("inbox purge", err)
}

// Count returns how many records the table holds for consumer group and
// handler, expired or not (for operators and tests).
func (i *Inbox) Count(ctx context.Context, group, handler string) (int64, error) {
	var n int64
	err := i.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+i.q.table+
		" WHERE consumer_group = "+i.q.ph(1)+" AND handler = "+i.q.ph(2), group, handler).Scan(&n)
	return n, i.wrap("inbox count", err)
}

func (i *Inbox) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &StoreError{Op: op, Table: i.table, Err: err}
}
