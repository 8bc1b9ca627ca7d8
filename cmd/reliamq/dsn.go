package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // "mysql" driver
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	dsnpkg "github.com/reliamq/reliamq/internal/dsn"
	"github.com/reliamq/reliamq/pkg/clock"
)

// database is an open store database and a description of it without
// credentials, for messages.
type database struct {
	db      *sql.DB
	dialect sqlstore.Dialect
	where   string
}

// openDatabase opens and pings the database of dsn. A SQLite file that does
// not exist is reported as not found instead of being created empty.
func openDatabase(ctx context.Context, dsn string, timeout time.Duration) (*database, error) {
	if dsn == "" {
		return nil, usageError("--dsn is required (or set RELIAMQ_DSN)")
	}
	d, err := dsnpkg.Parse(dsn)
	if err != nil {
		return nil, usageError("%v", strings.TrimPrefix(err.Error(), "dsn: "))
	}
	driver, driverDSN, dialect, where := d.Driver, d.DriverDSN, d.Dialect, d.Where
	var db *sql.DB
	if dialect == sqlstore.SQLite {
		if _, serr := os.Stat(driverDSN); serr != nil {
			if errors.Is(serr, os.ErrNotExist) {
				return nil, notFoundError("no SQLite database at %s", driverDSN)
			}
			return nil, fmt.Errorf("SQLite database %s: %w", driverDSN, serr)
		}
		if db, err = sqlite.Open(driverDSN); err != nil {
			return nil, fmt.Errorf("opening %s: %w", where, err)
		}
	} else {
		if db, err = sql.Open(driver, driverDSN); err != nil {
			return nil, usageError("opening %s: %v", where, err)
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := db.PingContext(pctx); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("cannot connect to %s: %w", where, err)
		}
	}
	return &database{db: db, dialect: dialect, where: where}, nil
}

// store opens the sqlstore.Store over table, which must exist. The store
// measures row ages (--older-than) on clk, the clock the output uses too.
func (d *database) store(ctx context.Context, table string, clk clock.Clock) (*sqlstore.Store, error) {
	if err := sqlstore.ValidateTable(table); err != nil {
		return nil, usageError("--table %q: not a valid table name (letters, digits and _, at most 63)", table)
	}
	st, err := sqlstore.New(sqlstore.Config{DB: d.db, Dialect: d.dialect, Table: table, Clock: clk}, nil)
	if errors.Is(err, sqlstore.ErrMissingTable) {
		return nil, notFoundError("table %s does not exist in %s (check --table; docs/sql-store.md has the schema): %v", table, d.where, err)
	}
	if err != nil {
		return nil, err
	}
	// Asked of the catalogue, so a typo in --table is reported as such and
	// not as an SQL error.
	ok, err := st.TableExists(ctx)
	if err != nil {
		return nil, fmt.Errorf("checking table %s in %s: %w", table, d.where, err)
	}
	if !ok {
		return nil, notFoundError("table %s does not exist in %s (check --table; docs/sql-store.md has the schema)", table, d.where)
	}
	return st, nil
}
