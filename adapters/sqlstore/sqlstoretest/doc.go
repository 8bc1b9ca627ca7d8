// Package sqlstoretest opens real databases for tests of code built on
// adapters/sqlstore: one *sql.DB per dialect with a pool suited to concurrent
// writers, a Store on a table of its own that is dropped when the test ends,
// and unique names for tables and topics.
//
// PostgreSQL and MariaDB/MySQL addresses come from pkg/servicetest, so a test
// needing an unreachable server is skipped on a developer machine and fails
// under CI. SQLite needs no server: each test gets a file in its temporary
// directory.
//
// Nothing here is meant for production code; import it from _test files only.
package sqlstoretest
