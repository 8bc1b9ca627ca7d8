// Package exampledb opens the database of an example from one DSN string, so
// every example takes the same --dsn flag.
//
//	""                                   SQLite in a new temporary directory
//	sqlite:/path/to/file.db              SQLite (modernc.org/sqlite, no cgo)
//	postgres://user@host:5432/db?...     PostgreSQL (pgx stdlib driver)
//	mysql://user:pass@tcp(host:3306)/db  MySQL or MariaDB (go-sql-driver DSN after "mysql://")
package exampledb

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/go-sql-driver/mysql" // "mysql" driver
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
)

// ErrUnknownDSN is returned for a DSN whose scheme is none of the above.
var ErrUnknownDSN = errors.New("exampledb: DSN must start with postgres://, postgresql://, mysql:// or sqlite")

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

// Open opens dsn (see the package documentation) and checks the connection.
func Open(dsn string) (*DB, error) {
	switch {
	case dsn == "":
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
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		db, err := sqlite.Open(path)
		if err != nil {
			return nil, err
		}
		return &DB{DB: db, Dialect: sqlstore.SQLite, Where: "SQLite " + path}, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return ping("pgx", dsn, sqlstore.Postgres, "PostgreSQL")
	case strings.HasPrefix(dsn, "mysql://"):
		return ping("mysql", strings.TrimPrefix(dsn, "mysql://"), sqlstore.MySQL, "MySQL/MariaDB")
	default:
		return nil, ErrUnknownDSN
	}
}

func ping(driver, dsn string, dialect sqlstore.Dialect, name string) (*DB, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s: %w", name, err)
	}
	return &DB{DB: db, Dialect: dialect, Where: name}, nil
}
