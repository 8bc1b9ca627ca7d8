package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/pkg/clock"
)

// database is an open store database and a description of it without
// credentials, for messages.
type database struct {
	db      *sql.DB
	dialect sqlstore.Dialect
	where   string
}

// parseDSN recognises the store DSN forms:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//	mysql://user:pass@host:3306/db?param=value           (URL form)
//	mysql://user:pass@tcp(host:3306)/db                  (go-sql-driver DSN after mysql://)
//	user:pass@tcp(host:3306)/db                          (go-sql-driver DSN)
//	sqlite:///abs/path.db, sqlite://rel/path.db, sqlite:path.db, file:path.db
//
// It returns the driver name, the driver's DSN, the dialect and a description
// without password. Malformed DSNs are usage errors.
func parseDSN(dsn string) (driver, driverDSN string, dialect sqlstore.Dialect, where string, err error) {
	switch {
	case dsn == "":
		return "", "", "", "", usageError("--dsn is required (or set RELIAMQ_DSN)")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, perr := url.Parse(dsn)
		if perr != nil {
			return "", "", "", "", usageError("malformed PostgreSQL DSN: %v", redactErr(perr, dsn))
		}
		return "pgx", dsn, sqlstore.Postgres, "PostgreSQL " + u.Host + u.Path, nil
	case strings.HasPrefix(dsn, "mysql://"):
		rest := strings.TrimPrefix(dsn, "mysql://")
		if strings.Contains(rest, "(") {
			return mysqlDSN(rest)
		}
		u, perr := url.Parse(dsn)
		if perr != nil {
			return "", "", "", "", usageError("malformed MySQL DSN: %v", redactErr(perr, dsn))
		}
		cfg := mysql.NewConfig()
		cfg.Net = "tcp"
		cfg.Addr = u.Host
		if u.Port() == "" && u.Host != "" {
			cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
		}
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		if q := u.Query(); len(q) > 0 {
			cfg.Params = map[string]string{}
			for k := range q {
				cfg.Params[k] = q.Get(k)
			}
		}
		return mysqlDSN(cfg.FormatDSN())
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		return sqlitePath(path)
	case strings.HasPrefix(dsn, "file:"):
		return sqlitePath(strings.TrimPrefix(dsn, "file:"))
	case strings.Contains(dsn, "@tcp(") || strings.Contains(dsn, "@unix(") || strings.Contains(dsn, "@/"):
		return mysqlDSN(dsn)
	default:
		return "", "", "", "", usageError("unrecognised DSN: want postgres://..., mysql://..., a go-sql-driver DSN (user@tcp(host:3306)/db), sqlite://path or file:path")
	}
}

func mysqlDSN(dsn string) (string, string, sqlstore.Dialect, string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", "", "", "", usageError("malformed MySQL DSN: %v", redactErr(err, dsn))
	}
	if cfg.DBName == "" {
		return "", "", "", "", usageError("MySQL DSN names no database")
	}
	return "mysql", cfg.FormatDSN(), sqlstore.MySQL, "MySQL " + cfg.Addr + "/" + cfg.DBName, nil
}

func sqlitePath(path string) (string, string, sqlstore.Dialect, string, error) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "", "", "", "", usageError("SQLite DSN names no file")
	}
	return "sqlite", path, sqlstore.SQLite, "SQLite " + path, nil
}

// redactErr keeps a parser's error from echoing the DSN's password.
func redactErr(err error, dsn string) string {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	if cfg, perr := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://")); perr == nil && cfg.Passwd != "" {
		msg = strings.ReplaceAll(msg, cfg.Passwd, "xxxxx")
	}
	return msg
}

// openDatabase opens and pings the database of dsn. A SQLite file that does
// not exist is reported as not found instead of being created empty.
func openDatabase(ctx context.Context, dsn string, timeout time.Duration) (*database, error) {
	driver, driverDSN, dialect, where, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var db *sql.DB
	if dialect == sqlstore.SQLite {
		if _, serr := os.Stat(driverDSN); serr != nil {
			if errors.Is(serr, os.ErrNotExist) {
				return nil, notFoundError("no SQLite database at %s", driverDSN)
			}
			return nil, fmt.Errorf("SQLite database %s: %w", driverDSN, serr)
		}
		if db, err = sqlstore.OpenSQLite(driverDSN); err != nil {
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
