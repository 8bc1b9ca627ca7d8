package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
)

func TestConfig_Validate_rejects_bad_configs_naming_the_field(t *testing.T) {
	db := &sql.DB{}
	tests := []struct {
		name  string
		cfg   sqlstore.Config
		field string // "" = valid
	}{
		{"valid", sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, Table: "ok_table"}, ""},
		{"missing DB", sqlstore.Config{Dialect: sqlstore.SQLite, Table: "t"}, "DB"},
		{"missing dialect", sqlstore.Config{DB: db, Table: "t"}, "Dialect"},
		{"unknown dialect", sqlstore.Config{DB: db, Dialect: "oracle", Table: "t"}, "Dialect"},
		{"injection in table", sqlstore.Config{DB: db, Dialect: sqlstore.MySQL, Table: "t; DROP TABLE y"}, "Table"},
		{"table starting with a digit", sqlstore.Config{DB: db, Dialect: sqlstore.MySQL, Table: "1t"}, "Table"},
		{"table too long", sqlstore.Config{DB: db, Dialect: sqlstore.MySQL, Table: strings.Repeat("a", 64)}, "Table"},
		{"negative lease", sqlstore.Config{DB: db, Dialect: sqlstore.Postgres, Table: "t", LeaseTimeout: -1}, "LeaseTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, sqlstore.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate: %v, want ErrInvalidConfig naming %s", err, tt.field)
			}
		})
	}
	if _, err := sqlstore.New(sqlstore.Config{Dialect: sqlstore.SQLite}, nil); !errors.Is(err, sqlstore.ErrInvalidConfig) {
		t.Errorf("New with no DB: %v, want ErrInvalidConfig", err)
	}
	if _, err := sqlstore.SchemaSQL(sqlstore.Postgres, `x"; DROP TABLE y; --`); !errors.Is(err, sqlstore.ErrInvalidTable) {
		t.Errorf("SchemaSQL with an injection: %v, want ErrInvalidTable", err)
	}
}

func TestStore_rejects_bad_input_with_typed_errors_before_any_SQL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		victim := sqlstoretest.UniqueName("victim")
		if _, err := st.DB().Exec("CREATE TABLE " + victim + " (id INTEGER)"); err != nil {
			t.Fatalf("create victim: %v", err)
		}
		t.Cleanup(func() { _, _ = st.DB().Exec("DROP TABLE " + victim) })
		ctx := context.Background()
		tests := []struct {
			name string
			msg  sqlstore.Message
			want error
		}{
			{"injection topic", sqlstore.Message{Topic: "x; DROP TABLE " + victim, UUID: "u"}, sqlstore.ErrInvalidTopic},
			{"quote in topic", sqlstore.Message{Topic: "x'--", UUID: "u"}, sqlstore.ErrInvalidTopic},
			{"empty topic", sqlstore.Message{UUID: "u"}, sqlstore.ErrInvalidTopic},
			{"long topic", sqlstore.Message{Topic: strings.Repeat("t", 256), UUID: "u"}, sqlstore.ErrInvalidTopic},
			{"control char in queue", sqlstore.Message{Queue: "a\nb", Topic: "t", UUID: "u"}, sqlstore.ErrInvalidQueue},
			{"invalid UTF-8 in UUID", sqlstore.Message{Topic: "t", UUID: "\xff"}, sqlstore.ErrInvalidMessage},
			{"NUL in metadata", sqlstore.Message{Topic: "t", UUID: "u", Metadata: map[string]string{"k": "a\x00"}}, sqlstore.ErrInvalidMetadata},
			{"invalid UTF-8 in metadata", sqlstore.Message{Topic: "t", UUID: "u", Metadata: map[string]string{"\xfe": "v"}}, sqlstore.ErrInvalidMetadata},
			{"negative attempts", sqlstore.Message{Topic: "t", UUID: "u", Attempts: -1}, sqlstore.ErrInvalidMessage},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := st.Insert(ctx, tt.msg)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Insert: %v, want %v", err, tt.want)
				}
				if sqlstore.IsRetryable(err) || errors.Is(err, sqlstore.ErrStoreUnavailable) {
					t.Errorf("bad input reported as retryable: %v", err)
				}
			})
		}
		if err := st.Insert(ctx); !errors.Is(err, sqlstore.ErrInvalidMessage) {
			t.Errorf("Insert of nothing: %v, want ErrInvalidMessage", err)
		}
		if _, err := st.DB().Exec("SELECT id FROM " + victim); err != nil {
			t.Errorf("victim table is gone: %v", err)
		}
		if rows, _ := st.List(ctx, sqlstore.Filter{AllQueues: true}); len(rows) != 0 {
			t.Errorf("%d rows stored from bad input", len(rows))
		}
	})
}

func TestValidateTopic_accepts_broker_topic_names(t *testing.T) {
	for _, topic := range []string{"orders", "%RETRY%group", "%DLQ%g", "a.b.c", "ns/topic", "a-b_c:d|e"} {
		if err := sqlstore.ValidateTopic(topic); err != nil {
			t.Errorf("ValidateTopic(%q): %v", topic, err)
		}
	}
}
