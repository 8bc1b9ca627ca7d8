// Package exampledb opens the database of an example from one DSN string, so
// every example takes the same --dsn flag, in the forms the reliamq command
// takes too (internal/dsn):
//
//	""                                   SQLite in a new temporary directory
//	sqlite:/path/to/file.db, file:...    SQLite (modernc.org/sqlite, no cgo)
//	postgres://user@host:5432/db?...     PostgreSQL (pgx stdlib driver)
//	mysql://user:pass@host:3306/db       MySQL or MariaDB (URL form)
//	mysql://user:pass@tcp(host:3306)/db  MySQL or MariaDB (go-sql-driver DSN after "mysql://")
//	user:pass@tcp(host:3306)/db          MySQL or MariaDB (go-sql-driver DSN)
package exampledb

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/go-sql-driver/mysql" // "mysql" driver
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/internal/dsn"
)

// ErrUnknownDSN is returned for a DSN of no recognised form (it wraps
// dsn.ErrUnrecognised).
var ErrUnknownDSN = fmt.Errorf("exampledb: %w", dsn.ErrUnrecognised)

// DB is an open database and what the examples print about it.
type DB struct {
	*sql.DB
	Dialect sqlstore.Dialect
	// Where describes the database without credentials.
	Where   string
	cleanup func()
}

// Close closes the database and removes the temporary directory, if any.
func (d *DB) Close() error {
	err := d.DB.Close()
	if d.cleanup != nil {
		d.cleanup()
	}
	return err
}

// Open opens s (see the package documentation) and checks the connection.
func Open(s string) (*DB, error) {
	if s == "" {
		dir, err := os.MkdirTemp("", "reliamq-example-")
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "reliamq.db")
		db, err := sqlite.Open(path)
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		return &DB{DB: db, Dialect: sqlstore.SQLite, Where: "SQLite " + path + " (temporary)",
			cleanup: func() { _ = os.RemoveAll(dir) }}, nil
	}
	d, err := dsn.Parse(s)
	if errors.Is(err, dsn.ErrUnrecognised) {
		return nil, ErrUnknownDSN
	}
	if err != nil {
		return nil, err
	}
	if d.Dialect == sqlstore.SQLite {
		db, err := sqlite.Open(d.DriverDSN)
		if err != nil {
			return nil, err
		}
		return &DB{DB: db, Dialect: sqlstore.SQLite, Where: d.Where}, nil
	}
	db, err := sql.Open(d.Driver, d.DriverDSN)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", d.Where, err)
	}
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s: %w", d.Where, err)
	}
	return &DB{DB: db, Dialect: d.Dialect, Where: d.Where}, nil
}
