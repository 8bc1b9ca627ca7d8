package sqlstore

import "fmt"

// InboxSchemaSQL returns the statements that create the inbox table and its
// expiry index for dialect, in order. Every statement uses IF NOT EXISTS.
// Operators who create tables themselves run exactly these.
func InboxSchemaSQL(dialect Dialect, table string) ([]string, error) {
	if err := ValidateTable(table); err != nil {
		return nil, err
	}
	q := quoteFor(dialect)
	idx := inboxIndexName(table)
	switch dialect {
	case Postgres:
		return []string{
			`CREATE TABLE IF NOT EXISTS ` + q(table) + ` (
	consumer_group VARCHAR(255) NOT NULL,
	handler VARCHAR(255) NOT NULL,
	uuid VARCHAR(255) NOT NULL,
	processed_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (consumer_group, handler, uuid)
)`,
			`CREATE INDEX IF NOT EXISTS ` + q(idx) + ` ON ` + q(table) + ` (expires_at)`,
		}, nil
	case MySQL:
		// 3 x 255 utf8mb4 characters = 3,060 bytes: within InnoDB's 3,072-byte
		// key limit (DYNAMIC rows, the default since MySQL 5.7 and MariaDB 10.2).
		return []string{
			"CREATE TABLE IF NOT EXISTS " + q(table) + ` (
	consumer_group VARCHAR(255) NOT NULL,
	handler VARCHAR(255) NOT NULL,
	uuid VARCHAR(255) NOT NULL,
	processed_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (consumer_group, handler, uuid),
	INDEX ` + q(idx) + ` (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
		}, nil
	case SQLite:
		return []string{
			`CREATE TABLE IF NOT EXISTS ` + q(table) + ` (
	consumer_group TEXT NOT NULL,
	handler TEXT NOT NULL,
	uuid TEXT NOT NULL,
	processed_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (consumer_group, handler, uuid)
)`,
			`CREATE INDEX IF NOT EXISTS ` + q(idx) + ` ON ` + q(table) + ` (expires_at)`,
		}, nil
	}
	return nil, fmt.Errorf("%w: Dialect: unknown %q", ErrInvalidConfig, string(dialect))
}

// inboxIndexName keeps the index name within the identifier limits.
func inboxIndexName(table string) string {
	if len(table) > 55 {
		table = table[:55]
	}
	return table + "_expires"
}

type inboxQueries struct{ queries }

// insert args: group, handler, uuid, processed_at, expires_at. Affects one
// row when the key is new, none when it exists; waits for a transaction
// holding the same key.
func (q inboxQueries) insert() string {
	values := " (" + inboxColumns + ") VALUES (" + q.placeholders(1, 5) + ")"
	if q.dialect == MySQL {
		// INSERT IGNORE reports 0 rows for a duplicate whatever the
		// connection's flags; "ON DUPLICATE KEY UPDATE" would report 1 on a
		// connection with clientFoundRows=true, and a duplicate would run.
		// IGNORE also turns some other errors into warnings, but the values
		// are checked first (ValidateKey: at most 255 bytes of text, which
		// VARCHAR(255) utf8mb4 always holds) and the rest are integers.
		return "INSERT IGNORE INTO " + q.table + values
	}
	return "INSERT INTO " + q.table + values + " ON CONFLICT DO NOTHING"
}

// purge args: now, limit.
func (q inboxQueries) purge() string {
	switch q.dialect {
	case Postgres:
		return "DELETE FROM " + q.table + " WHERE ctid = ANY(ARRAY(SELECT ctid FROM " + q.table +
			" WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED))"
	case MySQL:
		return "DELETE FROM " + q.table + " WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"
	}
	return "DELETE FROM " + q.table + " WHERE rowid IN (SELECT rowid FROM " + q.table +
		" WHERE expires_at <= ? LIMIT ?)"
}
