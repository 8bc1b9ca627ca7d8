package sqlstoretest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"

	// The drivers Open uses for the server dialects.
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// MaxIdleConns is the idle pool Open keeps on server databases. The
// database/sql default of 2 makes every concurrent writer beyond the second
// reopen a connection per statement, which costs more than the write itself
// and turns load tests into connection-setup tests.
const MaxIdleConns = 64

// Backend is one database a store can run on.
type Backend struct {
	// Name is the subtest name: "sqlite", "postgres" or "mysql".
	Name string
	// Dialect is the store dialect of the backend.
	Dialect sqlstore.Dialect
}

// Backends lists every dialect sqlstore supports, embedded SQLite first.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Dialect: sqlstore.SQLite},
		{Name: "postgres", Dialect: sqlstore.Postgres},
		{Name: "mysql", Dialect: sqlstore.MySQL},
	}
}

// ServerBackends lists the dialects that run on a database server, where
// several processes or stores claim from one table concurrently.
func ServerBackends() []Backend {
	return []Backend{
		{Name: "postgres", Dialect: sqlstore.Postgres},
		{Name: "mysql", Dialect: sqlstore.MySQL},
	}
}

// Dialects lists the dialects of Backends in the same order.
func Dialects() []sqlstore.Dialect {
	bs := Backends()
	out := make([]sqlstore.Dialect, len(bs))
	for i, b := range bs {
		out[i] = b.Dialect
	}
	return out
}

// ForEach runs fn as one subtest per backend, named after it.
func ForEach(t *testing.T, backends []Backend, fn func(t *testing.T, be Backend)) {
	t.Helper()
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) { fn(t, be) })
	}
}

// DSN returns a data source name for dialect that another process can open
// with OpenDSN: the servicetest address of a server (skipping or failing the
// test when it is unreachable), or a new file in the test's temporary
// directory for SQLite.
func DSN(t testing.TB, dialect sqlstore.Dialect) string {
	t.Helper()
	switch dialect {
	case sqlstore.Postgres:
		return servicetest.Postgres.Addr(t)
	case sqlstore.MySQL:
		return servicetest.MySQL.Addr(t)
	case sqlstore.SQLite:
		return filepath.Join(t.TempDir(), UniqueName("store")+".db")
	default:
		t.Fatalf("sqlstoretest: unknown dialect %q", dialect)
		return ""
	}
}

// OpenDSN opens dsn with the driver of dialect and the pool settings of Open.
// It is for code without a testing.TB, such as a child process started by a
// test; the caller closes the handle.
func OpenDSN(dialect sqlstore.Dialect, dsn string) (*sql.DB, error) {
	var driver string
	switch dialect {
	case sqlstore.SQLite:
		// sqlite.Open sets the single-writer pool SQLite needs.
		return sqlite.Open(dsn)
	case sqlstore.Postgres:
		driver = "pgx"
	case sqlstore.MySQL:
		driver = "mysql"
	default:
		return nil, fmt.Errorf("sqlstoretest: unknown dialect %q", dialect)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(MaxIdleConns)
	return db, nil
}

// Open returns a database of dialect for the test, closed when it ends. See
// DSN for where it comes from.
func Open(t testing.TB, dialect sqlstore.Dialect) *sql.DB {
	t.Helper()
	dsn := DSN(t, dialect)
	db, err := OpenDSN(dialect, dsn)
	if err != nil {
		t.Fatalf("sqlstoretest: open %s: %v", dialect, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// NewStore creates a store for the test. cfg.Dialect is set to dialect,
// cfg.DB to Open(t, dialect) when nil, cfg.Table to a unique name when empty,
// and cfg.AutoInitialize to true; the other fields are used as given. The
// table is dropped when the test ends.
func NewStore(t testing.TB, dialect sqlstore.Dialect, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	if cfg.DB == nil {
		cfg.DB = Open(t, dialect)
	}
	cfg.Dialect = dialect
	if cfg.Table == "" {
		cfg.Table = UniqueName("st")
	}
	cfg.AutoInitialize = true
	st, err := sqlstore.New(cfg, nil)
	if err != nil {
		t.Fatalf("sqlstoretest: new store: %v", err)
	}
	DropAtCleanup(t, cfg.DB, cfg.Table)
	return st
}

// DropAtCleanup drops table from db when the test ends. Registered after the
// handle was opened, it runs before the handle is closed.
func DropAtCleanup(t testing.TB, db *sql.DB, table string) {
	t.Helper()
	if err := sqlstore.ValidateTable(table); err != nil {
		t.Fatalf("sqlstoretest: %v", err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + table) })
}

// UniqueName returns prefix, an underscore and 12 random hex digits: a valid
// table, topic or consumer group name that tests running in parallel, or
// earlier runs against the same server, do not share.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}
