// Package sqlite opens SQLite databases for sqlstore (Dialect
// sqlstore.SQLite) through the pure-Go driver modernc.org/sqlite, which this
// package links in and registers as "sqlite". It is a package of its own so
// that a program using PostgreSQL or MySQL only does not link SQLite:
// importing adapters/sqlstore alone never does.
package sqlite

import (
	"database/sql"
	"fmt"
	"net/url"

	// The pure-Go SQLite driver, registered as "sqlite".
	_ "modernc.org/sqlite"

	"github.com/reliamq/reliamq/adapters/sqlstore"
)

// Open opens (creating if needed) the SQLite database file at path for
// use by a Store with Dialect SQLite.
//
// SQLite allows one writer at a time. The handle is limited to one open
// connection, so writers in this process queue in database/sql instead of
// failing with SQLITE_BUSY; a busy timeout of 5s covers other processes using
// the same file; WAL journaling lets readers run during a write; transactions
// start IMMEDIATE so a claim never has to upgrade a read lock. Consequence of
// the single connection: do not call Store methods (other than InsertTx with
// that transaction) while holding a transaction on this handle, or they wait
// for it forever. path ":memory:" gives a private in-memory database.
func Open(path string) (*sql.DB, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: path: required", sqlstore.ErrInvalidConfig)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	if path != ":memory:" {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: open sqlite %s: %w", sqlstore.ErrStoreUnavailable, path, err)
	}
	db.SetMaxOpenConns(1)
	// Keep the one connection: closing it would drop a :memory: database.
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: open sqlite %s: %w", sqlstore.ErrStoreUnavailable, path, err)
	}
	return db, nil
}
