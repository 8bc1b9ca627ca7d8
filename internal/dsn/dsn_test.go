package dsn_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/internal/dsn"
)

func TestParse_recognises_every_documented_form(t *testing.T) {
	tests := []struct {
		dsn, driver, driverDSN string
		dialect                sqlstore.Dialect
	}{
		{"postgres://u:p@db:5432/x?sslmode=disable", "pgx", "postgres://u:p@db:5432/x?sslmode=disable", sqlstore.Postgres},
		{"postgresql://u@db/x", "pgx", "postgresql://u@db/x", sqlstore.Postgres},
		{"mysql://u:p@db:3307/x?parseTime=true", "mysql", "u:p@tcp(db:3307)/x?parseTime=true", sqlstore.MySQL},
		{"mysql://u@db/x", "mysql", "u@tcp(db:3306)/x", sqlstore.MySQL},
		{"mysql://u:p@tcp(db:3306)/x", "mysql", "u:p@tcp(db:3306)/x", sqlstore.MySQL},
		{"root@tcp(127.0.0.1:3306)/test?parseTime=true", "mysql", "root@tcp(127.0.0.1:3306)/test?parseTime=true", sqlstore.MySQL},
		{"sqlite:///var/lib/r.db", "sqlite", "/var/lib/r.db", sqlstore.SQLite},
		{"sqlite://r.db", "sqlite", "r.db", sqlstore.SQLite},
		{"sqlite:/var/r.db", "sqlite", "/var/r.db", sqlstore.SQLite},
		{"file:r.db?mode=ro", "sqlite", "r.db", sqlstore.SQLite},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			d, err := dsn.Parse(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if d.Driver != tt.driver || d.DriverDSN != tt.driverDSN || d.Dialect != tt.dialect {
				t.Fatalf("got %s %q %s, want %s %q %s", d.Driver, d.DriverDSN, d.Dialect, tt.driver, tt.driverDSN, tt.dialect)
			}
			if strings.Contains(d.Where, ":p@") {
				t.Fatalf("description %q shows the password", d.Where)
			}
		})
	}
}

func TestParse_refuses_bad_DSNs_with_a_sentinel_and_without_the_password(t *testing.T) {
	for bad, want := range map[string]error{
		"": dsn.ErrEmpty, "redis://x": dsn.ErrUnrecognised, "mysql://u@tcp(db)/": dsn.ErrMalformed,
		"sqlite:": dsn.ErrMalformed, "mysql://u:secret@tcp(db:3306": dsn.ErrMalformed,
		"postgres://u:secret@db:99999999999/x%zz": dsn.ErrMalformed,
	} {
		_, err := dsn.Parse(bad)
		if !errors.Is(err, want) {
			t.Errorf("%q: err %v, want %v", bad, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error %q shows the password", bad, err)
		}
	}
}
