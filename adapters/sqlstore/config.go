package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/reliamq/reliamq/pkg/clock"
)

// Dialect selects the SQL spoken to the database.
type Dialect string

// Supported dialects.
const (
	// Postgres is PostgreSQL 9.5+ through github.com/jackc/pgx/v5/stdlib
	// (driver "pgx") or any driver using $1 placeholders. Claims use
	// FOR UPDATE SKIP LOCKED.
	Postgres Dialect = "postgres"
	// MySQL is MySQL 8+ or MariaDB 10.6+ through github.com/go-sql-driver/mysql.
	// Claims use FOR UPDATE SKIP LOCKED.
	MySQL Dialect = "mysql"
	// SQLite is SQLite 3.35+ through modernc.org/sqlite (driver "sqlite"); see
	// sqlite.Open. SQLite has one writer at a time, which is what makes its
	// claims exclusive.
	SQLite Dialect = "sqlite"
)

// DefaultTable is the table used when Config.Table is empty.
const DefaultTable = "reliamq_fallback"

// DefaultLeaseTimeout is used when Config.LeaseTimeout is zero.
const DefaultLeaseTimeout = 30 * time.Second

var tableRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`)

// Config configures a Store.
type Config struct {
	// DB is the database. Required. The Store never closes it.
	DB *sql.DB
	// Dialect of DB: Postgres, MySQL or SQLite. Required.
	Dialect Dialect
	// Table holds the rows. Default DefaultTable ("reliamq_fallback"). Must
	// match ^[a-zA-Z_][a-zA-Z0-9_]{0,62}$. Several Stores may share a table
	// by using different queues.
	Table string
	// AutoInitialize creates the table and its index (IF NOT EXISTS) in New.
	// Default false: create them with InitializeSchema or with the SQL from
	// SchemaSQL (docs/sql-store.md).
	AutoInitialize bool
	// LeaseTimeout is how long a claimed row stays invisible to other claims.
	// A worker that crashes before Delete/Reschedule loses its rows to the next
	// claim after this long, so it must exceed the time to process one claimed
	// batch. Default DefaultLeaseTimeout (30s); negative is invalid.
	LeaseTimeout time.Duration
	// Clock gives the time used for due times, leases and created times.
	// Default clock.Real.
	Clock clock.Clock
	// Owner names this Store in leased_by when a ClaimRequest has no Owner.
	// Default: host name, process id and a random suffix.
	Owner string
}

func (c *Config) setDefaults() {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.LeaseTimeout == 0 {
		c.LeaseTimeout = DefaultLeaseTimeout
	}
	c.Clock = clock.OrReal(c.Clock)
	if c.Owner == "" {
		c.Owner = defaultOwner()
	}
}

// Validate reports every problem of the config at once, each error wrapping
// ErrInvalidConfig and naming its field.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, fieldError("DB", "required"))
	}
	switch c.Dialect {
	case Postgres, MySQL, SQLite:
	case "":
		errs = append(errs, fieldError("Dialect", "required (postgres, mysql or sqlite)"))
	default:
		errs = append(errs, fieldError("Dialect", "unknown %q (want postgres, mysql or sqlite)", string(c.Dialect)))
	}
	if err := ValidateTable(c.Table); err != nil {
		errs = append(errs, fieldError("Table", "%w", err))
	}
	if c.LeaseTimeout < 0 {
		errs = append(errs, fieldError("LeaseTimeout", "%v: must be >= 0", c.LeaseTimeout))
	}
	if len(c.Owner) > 255 {
		errs = append(errs, fieldError("Owner", "longer than 255 bytes"))
	}
	return errors.Join(errs...)
}

// ValidateTable returns an error matching ErrInvalidTable unless name is a
// plain SQL identifier of at most 63 characters.
func ValidateTable(name string) error {
	if !tableRe.MatchString(name) {
		return fmt.Errorf("%w: %q must match %s", ErrInvalidTable, name, tableRe.String())
	}
	return nil
}
