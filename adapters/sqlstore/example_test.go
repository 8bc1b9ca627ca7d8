package sqlstore_test

import (
	"context"
	"fmt"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
)

// The statements operators run to create a table themselves (the same ones
// AutoInitialize and InitializeSchema run).
func ExampleSchemaSQL() {
	stmts, err := sqlstore.SchemaSQL(sqlstore.Postgres, "reliamq_fallback")
	if err != nil {
		panic(err)
	}
	for _, s := range stmts {
		fmt.Println(s + ";")
	}
	// Output:
	// CREATE TABLE IF NOT EXISTS "reliamq_fallback" (
	// 	id BIGSERIAL PRIMARY KEY,
	// 	queue VARCHAR(255) NOT NULL DEFAULT '',
	// 	topic VARCHAR(255) NOT NULL,
	// 	uuid VARCHAR(255) NOT NULL,
	// 	payload BYTEA NOT NULL,
	// 	metadata TEXT NOT NULL,
	// 	attempts INTEGER NOT NULL DEFAULT 0,
	// 	next_attempt_at BIGINT NOT NULL,
	// 	leased_until BIGINT NOT NULL DEFAULT 0,
	// 	leased_by VARCHAR(255) NOT NULL DEFAULT '',
	// 	first_error TEXT NOT NULL,
	// 	last_error TEXT NOT NULL,
	// 	created_at BIGINT NOT NULL
	// );
	// CREATE INDEX IF NOT EXISTS "reliamq_fallback_due" ON "reliamq_fallback" (queue, next_attempt_at, id);
}

// A worker's loop over a store: claim due rows, then delete what was handled
// and reschedule what failed.
func ExampleStore_Claim() {
	db, err := sqlite.Open(":memory:")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, AutoInitialize: true}, nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = st.Insert(ctx,
		sqlstore.Message{Topic: "orders", UUID: "a", Payload: []byte("1")},
		sqlstore.Message{Topic: "orders", UUID: "b", Payload: []byte("2")},
	)
	rows, _ := st.Claim(ctx, sqlstore.ClaimRequest{Owner: "worker-1", Limit: 10})
	for _, r := range rows {
		fmt.Println(r.UUID, r.Topic, string(r.Payload), r.LeasedBy)
	}
	_ = st.Delete(ctx, rows[0].ID)
	_ = st.Reschedule(ctx, rows[1].ID, rows[1].NextAttemptAt.Add(10e9), "broker down")
	s, _ := st.Stats(ctx, "")
	fmt.Println("backlog", s.Backlog, "due", s.Due)
	// Output:
	// a orders 1 worker-1
	// b orders 2 worker-1
	// backlog 1 due 0
}
