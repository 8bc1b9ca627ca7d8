package sqlstore_test

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
)

// Every config error reads "sqlstore: invalid config: <Field>: <reason>" and
// matches ErrInvalidConfig, each problem of a joined error included (the
// second one used to lack the sentinel's text).
func TestConstructors_report_each_config_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	tests := []struct {
		name   string
		ctor   func() error
		fields []string
	}{
		{"New: DB and Dialect", func() error {
			_, err := sqlstore.New(sqlstore.Config{LeaseTimeout: -1}, nil)
			return err
		}, []string{"DB", "Dialect", "LeaseTimeout"}},
		{"New: Table", func() error {
			_, err := sqlstore.New(sqlstore.Config{DB: &sql.DB{}, Dialect: sqlstore.SQLite, Table: "a b", Owner: strings.Repeat("o", 256)}, nil)
			return err
		}, []string{"Table", "Owner"}},
		{"NewPublisher: Store and Queue", func() error {
			_, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Queue: "a\x00"})
			return err
		}, []string{"Store", "Queue"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ctor()
			if !errors.Is(err, sqlstore.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if want := sqlstore.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want a line %q...", err, want)
				}
			}
		})
	}
}
