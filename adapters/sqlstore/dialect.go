package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
)

// columns in the order every SELECT and RETURNING lists them (see scanMessage).
const columns = "id, queue, topic, uuid, payload, metadata, attempts, next_attempt_at, " +
	"created_at, first_error, last_error, leased_until, leased_by"

const insertColumns = "queue, topic, uuid, payload, metadata, attempts, next_attempt_at, " +
	"leased_until, leased_by, first_error, last_error, created_at"

// insertParams is how many bind parameters one inserted row takes.
const insertParams = 10

// SchemaSQL returns the statements that create table and its index for
// dialect, in order. Every statement uses IF NOT EXISTS. Operators who create
// tables themselves run exactly these (docs/sql-store.md lists them).
func SchemaSQL(dialect Dialect, table string) ([]string, error) {
	if err := ValidateTable(table); err != nil {
		return nil, err
	}
	q := quoteFor(dialect)
	idx := indexName(table)
	switch dialect {
	case Postgres:
		return []string{
			`CREATE TABLE IF NOT EXISTS ` + q(table) + ` (
	id BIGSERIAL PRIMARY KEY,
	queue VARCHAR(255) NOT NULL DEFAULT '',
	topic VARCHAR(255) NOT NULL,
	uuid VARCHAR(255) NOT NULL,
	payload BYTEA NOT NULL,
	metadata TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	leased_until BIGINT NOT NULL DEFAULT 0,
	leased_by VARCHAR(255) NOT NULL DEFAULT '',
	first_error TEXT NOT NULL,
	last_error TEXT NOT NULL,
	created_at BIGINT NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS ` + q(idx) + ` ON ` + q(table) + ` (queue, next_attempt_at, id)`,
		}, nil
	case MySQL:
		return []string{
			"CREATE TABLE IF NOT EXISTS " + q(table) + ` (
	id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	queue VARCHAR(255) NOT NULL DEFAULT '',
	topic VARCHAR(255) NOT NULL,
	uuid VARCHAR(255) NOT NULL,
	payload LONGBLOB NOT NULL,
	metadata LONGTEXT NOT NULL,
	attempts INT NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	leased_until BIGINT NOT NULL DEFAULT 0,
	leased_by VARCHAR(255) NOT NULL DEFAULT '',
	first_error TEXT NOT NULL,
	last_error TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	INDEX ` + q(idx) + ` (queue, next_attempt_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
		}, nil
	case SQLite:
		return []string{
			`CREATE TABLE IF NOT EXISTS ` + q(table) + ` (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	queue TEXT NOT NULL DEFAULT '',
	topic TEXT NOT NULL,
	uuid TEXT NOT NULL,
	payload BLOB NOT NULL,
	metadata TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	leased_until INTEGER NOT NULL DEFAULT 0,
	leased_by TEXT NOT NULL DEFAULT '',
	first_error TEXT NOT NULL,
	last_error TEXT NOT NULL,
	created_at INTEGER NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS ` + q(idx) + ` ON ` + q(table) + ` (queue, next_attempt_at, id)`,
		}, nil
	}
	return nil, fmt.Errorf("%w: Dialect: unknown %q", ErrInvalidConfig, string(dialect))
}

// indexName keeps the index name within the 63/64-character identifier
// limits of PostgreSQL and MySQL.
func indexName(table string) string {
	if len(table) > 59 {
		table = table[:59]
	}
	return table + "_due"
}

func quoteFor(d Dialect) func(string) string {
	if d == MySQL {
		return func(s string) string { return "`" + s + "`" }
	}
	return func(s string) string { return `"` + s + `"` }
}

// queries holds the statements of one Store, built once from the validated
// table name: no value ever reaches SQL text.
type queries struct {
	dialect Dialect
	table   string // quoted
}

func newQueries(d Dialect, table string) queries {
	return queries{dialect: d, table: quoteFor(d)(table)}
}

// ph returns the n-th (1-based) placeholder.
func (q queries) ph(n int) string {
	if q.dialect == Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// placeholders returns "p(from), p(from+1), ..., p(from+count-1)".
func (q queries) placeholders(from, count int) string {
	var b strings.Builder
	for i := 0; i < count; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q.ph(from + i))
	}
	return b.String()
}

func (q queries) insert(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + q.table + " (" + insertColumns + ") VALUES ")
	n := 1
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		// queue, topic, uuid, payload, metadata, attempts, next_attempt_at,
		// leased_until=0, leased_by='', first_error, last_error, created_at
		fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s, %s, 0, '', %s, %s, %s)",
			q.ph(n), q.ph(n+1), q.ph(n+2), q.ph(n+3), q.ph(n+4), q.ph(n+5), q.ph(n+6),
			q.ph(n+7), q.ph(n+8), q.ph(n+9))
		n += insertParams
	}
	return b.String()
}

// claimPostgres and claimSQLite lease and return due rows in one statement.
// Args: owner, leasedUntil, queue, now, now, limit.
func (q queries) claimReturning() string {
	lock := ""
	if q.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	return "UPDATE " + q.table + " SET leased_by = " + q.ph(1) + ", leased_until = " + q.ph(2) +
		" WHERE id IN (SELECT id FROM " + q.table +
		" WHERE queue = " + q.ph(3) + " AND next_attempt_at <= " + q.ph(4) + " AND leased_until <= " + q.ph(5) +
		" ORDER BY next_attempt_at, id LIMIT " + q.ph(6) + lock + ")" +
		" RETURNING " + columns
}

// claimSelectMySQL locks due rows; args: queue, now, now, limit.
func (q queries) claimSelectMySQL() string {
	return "SELECT id FROM " + q.table +
		" WHERE queue = ? AND next_attempt_at <= ? AND leased_until <= ?" +
		" ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED"
}

// leaseIDs sets the lease on n ids; args: owner, leasedUntil, ids...
func (q queries) leaseIDs(n int) string {
	return "UPDATE " + q.table + " SET leased_by = " + q.ph(1) + ", leased_until = " + q.ph(2) +
		" WHERE id IN (" + q.placeholders(3, n) + ")"
}

func (q queries) selectIDs(n int) string {
	return "SELECT " + columns + " FROM " + q.table + " WHERE id IN (" + q.placeholders(1, n) + ") ORDER BY next_attempt_at, id"
}

func (q queries) delete(n int) string {
	return "DELETE FROM " + q.table + " WHERE id IN (" + q.placeholders(1, n) + ")"
}

// reschedule args: next, lastError, lastError (as first error when none), id.
func (q queries) reschedule() string {
	return "UPDATE " + q.table + " SET attempts = attempts + 1, next_attempt_at = " + q.ph(1) +
		", last_error = " + q.ph(2) +
		", first_error = CASE WHEN first_error = '' THEN " + q.ph(3) + " ELSE first_error END" +
		", leased_until = 0, leased_by = '' WHERE id = " + q.ph(4)
}

// requeue args: next, ids...
func (q queries) requeue(n int) string {
	return "UPDATE " + q.table + " SET next_attempt_at = " + q.ph(1) +
		", leased_until = 0, leased_by = '' WHERE id IN (" + q.placeholders(2, n) + ")"
}

// stats args: now, now, queue.
func (q queries) stats() string {
	return "SELECT COUNT(*), COALESCE(MIN(created_at), 0)," +
		" COALESCE(SUM(CASE WHEN next_attempt_at <= " + q.ph(1) + " THEN 1 ELSE 0 END), 0)," +
		" COALESCE(SUM(CASE WHEN leased_until > " + q.ph(2) + " THEN 1 ELSE 0 END), 0)" +
		" FROM " + q.table + " WHERE queue = " + q.ph(3)
}

// get args: id.
func (q queries) get() string {
	return "SELECT " + columns + " FROM " + q.table + " WHERE id = " + q.ph(1)
}

// errorContains matches rows whose first or last error contains the text
// bound at placeholders a and b (the same text twice, since "?" placeholders
// cannot be reused). A substring function rather than LIKE: LIKE would need
// its wildcards escaped, and is case-insensitive in SQLite.
func (q queries) errorContains(a, b int) string {
	fn := "instr(first_error, " + q.ph(a) + ") > 0 OR instr(last_error, " + q.ph(b) + ") > 0"
	if q.dialect == Postgres {
		fn = "strpos(first_error, " + q.ph(a) + ") > 0 OR strpos(last_error, " + q.ph(b) + ") > 0"
	}
	return "(" + fn + ")"
}

// tableExists args: the unquoted table name.
func (q queries) tableExists() string {
	switch q.dialect {
	case Postgres:
		return "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
	case MySQL:
		return "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	}
	return "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
}
