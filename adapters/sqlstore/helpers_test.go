package sqlstore_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

type backend struct {
	name    string
	dialect sqlstore.Dialect
	open    func(t testing.TB) *sql.DB
}

var backends = []backend{
	{name: "sqlite", dialect: sqlstore.SQLite, open: openSQLite},
	{name: "postgres", dialect: sqlstore.Postgres, open: openPostgres},
	{name: "mysql", dialect: sqlstore.MySQL, open: openMySQL},
}

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "store.db"))
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
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openMySQL(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", servicetest.MySQL.Addr(t))
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func uniqueTable(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// newStore opens a fresh table on the backend; cfg's DB, Dialect, Table and
// AutoInitialize are filled in. The table is dropped at the end of the test.
func newStore(t testing.TB, be backend, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	if cfg.DB == nil {
		cfg.DB = be.open(t)
	}
	cfg.Dialect = be.dialect
	if cfg.Table == "" {
		cfg.Table = uniqueTable("st")
	}
	cfg.AutoInitialize = true
	st, err := sqlstore.New(cfg, nil)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	t.Cleanup(func() { _, _ = cfg.DB.Exec("DROP TABLE " + cfg.Table) })
	return st
}

func forEachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { fn(t, be) })
	}
}
