package sqlite_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
)

func TestOpen_empty_path_is_a_config_error_naming_the_field(t *testing.T) {
	_, err := sqlite.Open("")
	if !errors.Is(err, sqlstore.ErrInvalidConfig) || !strings.Contains(err.Error(), ": path: required") {
		t.Fatalf("Open(\"\") = %v; want ErrInvalidConfig naming path", err)
	}
}

func TestOpen_gives_a_WAL_database_a_store_can_use(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}
