package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/pkg/policy"
)

// FuzzStore_insert_round_trips_or_rejects checks the row encoding: whatever a
// caller passes is either stored and read back unchanged, or rejected with a
// typed, permanent error. Nothing is altered silently.
func FuzzStore_insert_round_trips_or_rejects(f *testing.F) {
	f.Add("orders", "6f1c2d3e", []byte("payload"), "key", "value")
	f.Add("x; DROP TABLE y", "u", []byte{}, "", "")
	f.Add("%RETRY%group", "u\x00", []byte{0, 0xff}, "k\xff", "v")
	f.Add("a.b/c:d|e-f_g", "ü", []byte(nil), "k", "v\x00")
	f.Add("t", "u", []byte("{}"), `"quoted"`, `{"json":1}`)
	db, err := sqlite.Open(":memory:")
	if err != nil {
		f.Fatalf("open: %v", err)
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, AutoInitialize: true}, nil)
	if err != nil {
		f.Fatalf("store: %v", err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, topic, uuid string, payload []byte, key, value string) {
		in := sqlstore.Message{Topic: topic, UUID: uuid, Payload: payload, Metadata: map[string]string{key: value}}
		err := st.Insert(ctx, in)
		if err != nil {
			invalid := errors.Is(err, sqlstore.ErrInvalidTopic) || errors.Is(err, sqlstore.ErrInvalidMessage) ||
				errors.Is(err, sqlstore.ErrInvalidMetadata) || errors.Is(err, sqlstore.ErrInvalidQueue)
			if !invalid || !policy.IsPermanent(err) {
				t.Fatalf("Insert(%q, %q): %v, want nil or a permanent Invalid error", topic, uuid, err)
			}
			return
		}
		rows, err := st.List(ctx, sqlstore.Filter{UUID: uuid, Topic: topic, Limit: 10})
		if err != nil || len(rows) != 1 {
			t.Fatalf("List: %v, %d rows", err, len(rows))
		}
		got := rows[0]
		if got.Topic != topic || got.UUID != uuid || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("stored (%q, %q, %x), read back (%q, %q, %x)", topic, uuid, payload, got.Topic, got.UUID, got.Payload)
		}
		if diff := cmp.Diff(in.Metadata, got.Metadata); diff != "" {
			t.Fatalf("metadata changed (-in +out):\n%s", diff)
		}
		if err := st.Delete(ctx, got.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
	})
}
