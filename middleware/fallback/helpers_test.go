package fallback_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

var errBrokerDown = errors.New("broker down")

type backend struct {
	name    string
	dialect sqlstore.Dialect
	open    func(t testing.TB) *sql.DB
}

var (
	sqliteBackend   = backend{"sqlite", sqlstore.SQLite, openSQLite}
	postgresBackend = backend{"postgres", sqlstore.Postgres, openPostgres}
	mysqlBackend    = backend{"mysql", sqlstore.MySQL, openMySQL}
	backends        = []backend{sqliteBackend, postgresBackend, mysqlBackend}
)

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "fallback.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openPostgres(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", servicetest.Postgres.Addr(t))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	// Keep connections for every concurrent writer: reopening one per
	// write (the default keeps 2 idle) costs more than the write itself.
	db.SetMaxIdleConns(64)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openMySQL(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", servicetest.MySQL.Addr(t))
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	// Keep connections for every concurrent writer: reopening one per
	// write (the default keeps 2 idle) costs more than the write itself.
	db.SetMaxIdleConns(64)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func uniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// newStore creates a fresh table (dropped at the end of the test).
func newStore(t testing.TB, be backend, db *sql.DB, clk clock.Clock) *sqlstore.Store {
	t.Helper()
	if db == nil {
		db = be.open(t)
	}
	table := uniqueName("fb")
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: be.dialect, Table: table, AutoInitialize: true,
		Clock: clk, LeaseTimeout: 30e9}, nil)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE " + table) })
	return st
}

// sent is one message seen by a recorder.
type sent struct {
	Topic    string
	UUID     string
	Payload  string
	Metadata map[string]string
}

// recorder is a publisher that fails while fail returns an error and records
// every message it accepted.
type recorder struct {
	mu    sync.Mutex
	fail  func(topic string, msg *message.Message) error
	calls int
	got   []sent
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, m := range msgs {
		if r.fail != nil {
			if err := r.fail(topic, m); err != nil {
				return err
			}
		}
	}
	for _, m := range msgs {
		md := map[string]string{}
		for k, v := range m.Metadata {
			md[k] = v
		}
		r.got = append(r.got, sent{Topic: topic, UUID: m.UUID, Payload: string(m.Payload), Metadata: md})
	}
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) setFail(f func(topic string, msg *message.Message) error) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *recorder) sent() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.got...)
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func alwaysFail(err error) func(string, *message.Message) error {
	return func(string, *message.Message) error { return err }
}
