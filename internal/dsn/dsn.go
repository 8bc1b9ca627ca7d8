// Package dsn parses the database DSNs the reliamq command and the examples
// accept, so both understand the same forms:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//	mysql://user:pass@host:3306/db?param=value           (URL form)
//	mysql://user:pass@tcp(host:3306)/db                  (go-sql-driver DSN after mysql://)
//	user:pass@tcp(host:3306)/db                          (go-sql-driver DSN)
//	sqlite:///abs/path.db, sqlite://rel/path.db, sqlite:path.db, file:path.db
//
// Parse only parses: the program imports the drivers it opens (pgx's stdlib
// package for "pgx", go-sql-driver/mysql for "mysql", adapters/sqlstore/sqlite
// for SQLite), so a program that takes PostgreSQL DSNs only links no other.
package dsn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/reliamq/reliamq/adapters/sqlstore"
)

var (
	// ErrEmpty is returned for an empty DSN.
	ErrEmpty = errors.New("dsn: empty")
	// ErrUnrecognised is returned for a DSN of none of the forms above.
	ErrUnrecognised = errors.New("dsn: unrecognised DSN: want postgres://..., mysql://..., a go-sql-driver DSN (user@tcp(host:3306)/db), sqlite://path or file:path")
	// ErrMalformed is returned for a DSN of a known form that does not parse.
	ErrMalformed = errors.New("dsn: malformed")
)

// DSN is a parsed DSN.
type DSN struct {
	// Driver is the database/sql driver name: "pgx", "mysql" or "sqlite".
	Driver string
	// DriverDSN is what to give sql.Open with Driver; for SQLite the file
	// path, for sqlite.Open.
	DriverDSN string
	// Dialect is the sqlstore dialect.
	Dialect sqlstore.Dialect
	// Where describes the database without credentials, for messages.
	Where string
}

// Parse recognises the forms in the package documentation. Errors match
// ErrEmpty, ErrUnrecognised or ErrMalformed and never contain the password.
func Parse(s string) (DSN, error) {
	switch {
	case s == "":
		return DSN{}, ErrEmpty
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		u, err := url.Parse(s)
		if err != nil {
			return DSN{}, fmt.Errorf("%w: PostgreSQL DSN: %s", ErrMalformed, redact(err, s))
		}
		return DSN{Driver: "pgx", DriverDSN: s, Dialect: sqlstore.Postgres, Where: "PostgreSQL " + u.Host + u.Path}, nil
	case strings.HasPrefix(s, "mysql://"):
		rest := strings.TrimPrefix(s, "mysql://")
		if strings.Contains(rest, "(") {
			return mysqlDSN(rest, s)
		}
		u, err := url.Parse(s)
		if err != nil {
			return DSN{}, fmt.Errorf("%w: MySQL DSN: %s", ErrMalformed, redact(err, s))
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
		return mysqlDSN(cfg.FormatDSN(), s)
	case strings.HasPrefix(s, "sqlite:"):
		return sqlitePath(strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//"))
	case strings.HasPrefix(s, "file:"):
		return sqlitePath(strings.TrimPrefix(s, "file:"))
	case strings.Contains(s, "@tcp(") || strings.Contains(s, "@unix(") || strings.Contains(s, "@/"):
		return mysqlDSN(s, s)
	default:
		return DSN{}, ErrUnrecognised
	}
}

func mysqlDSN(s, orig string) (DSN, error) {
	cfg, err := mysql.ParseDSN(s)
	if err != nil {
		return DSN{}, fmt.Errorf("%w: MySQL DSN: %s", ErrMalformed, redact(err, orig))
	}
	if cfg.DBName == "" {
		return DSN{}, fmt.Errorf("%w: MySQL DSN names no database", ErrMalformed)
	}
	return DSN{Driver: "mysql", DriverDSN: cfg.FormatDSN(), Dialect: sqlstore.MySQL,
		Where: "MySQL " + cfg.Addr + "/" + cfg.DBName}, nil
}

func sqlitePath(path string) (DSN, error) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return DSN{}, fmt.Errorf("%w: SQLite DSN names no file", ErrMalformed)
	}
	return DSN{Driver: "sqlite", DriverDSN: path, Dialect: sqlstore.SQLite, Where: "SQLite " + path}, nil
}

// redact keeps a parser's error from echoing the DSN's password.
func redact(err error, s string) string {
	msg := err.Error()
	if u, perr := url.Parse(s); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	if cfg, perr := mysql.ParseDSN(strings.TrimPrefix(s, "mysql://")); perr == nil && cfg.Passwd != "" {
		msg = strings.ReplaceAll(msg, cfg.Passwd, "xxxxx")
	}
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s, "@"); at > i {
			if c := strings.Index(s[i+3:at], ":"); c >= 0 {
				if p := s[i+3+c+1 : at]; p != "" {
					msg = strings.ReplaceAll(msg, p, "xxxxx")
				}
			}
		}
	}
	return msg
}
