package inbox_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/redisinbox"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/inbox"
)

// BenchmarkInbox_PostgreSQL compares, in one run, a handler that writes one
// row to PostgreSQL in its own transaction (without_inbox) with the same
// handler under the inbox, writing the row in the inbox's transaction
// together with the inbox record (with_inbox). Each iteration handles one
// message with a new UUID; 4 x GOMAXPROCS handlers run concurrently, as a
// router's handler goroutines do. Compare with benchstat; the ratio
// with/without is the inbox's cost for a realistic handler: one statement
// more (the record) in a transaction of three round trips.
func BenchmarkInbox_PostgreSQL(b *testing.B) {
	db := sqlstoretest.Open(b, sqlstore.Postgres)
	db.SetMaxOpenConns(0)
	// The business row a handler writes: a table with a primary key, as
	// real tables have.
	table := sqlstoretest.UniqueName("orders")
	sqlstoretest.DropAtCleanup(b, db, table)
	if _, err := db.Exec("CREATE TABLE " + table + " (id BIGSERIAL PRIMARY KEY, message_uuid VARCHAR(255) NOT NULL, payload BYTEA NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	insert := "INSERT INTO " + table + " (message_uuid, payload) VALUES ($1, $2)"
	run := func(b *testing.B, h message.HandlerFunc) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				msg := message.NewMessage(watermill.NewUUID(), []byte("payload"))
				msg.SetContext(context.Background())
				if _, err := h(msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	ownTx := func(msg *message.Message) ([]*message.Message, error) {
		tx, err := db.BeginTx(msg.Context(), nil)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(msg.Context(), insert, msg.UUID, msg.Payload); err != nil {
			_ = tx.Rollback()
			return nil, err
		}
		return nil, tx.Commit()
	}
	b.Run("without_inbox", func(b *testing.B) { run(b, ownTx) })
	// The same two handlers measured in alternating chunks of 200 messages,
	// so that load changes on a shared machine hit both alike; it reports
	// each variant's time per message and the throughput ratio.
	b.Run("interleaved", func(b *testing.B) {
		st := newSQLStore(b, sqlstore.Postgres, db, nil)
		ib, err := inbox.New(inbox.Config{ConsumerGroup: "bench", Handler: "h", Store: st, PurgeInterval: -1}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ib.Close()
		withInbox := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			_, err := inbox.Tx(msg.Context()).ExecContext(msg.Context(), insert, msg.UUID, msg.Payload)
			return nil, err
		})
		const chunk = 200
		var without, with time.Duration
		b.ResetTimer()
		for done := 0; done < b.N; done += chunk {
			n := min(chunk, b.N-done)
			without += handleConcurrently(b, ownTx, n)
			with += handleConcurrently(b, withInbox, n)
		}
		b.ReportMetric(float64(without.Nanoseconds())/float64(b.N), "without-ns/msg")
		b.ReportMetric(float64(with.Nanoseconds())/float64(b.N), "with-ns/msg")
		b.ReportMetric(float64(without)/float64(with), "throughput-ratio")
	})
	b.Run("with_inbox", func(b *testing.B) {
		st := newSQLStore(b, sqlstore.Postgres, db, nil)
		ib, err := inbox.New(inbox.Config{ConsumerGroup: "bench", Handler: "h", Store: st, PurgeInterval: -1}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ib.Close()
		run(b, ib.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			_, err := inbox.Tx(msg.Context()).ExecContext(msg.Context(), insert, msg.UUID, msg.Payload)
			return nil, err
		}))
	})
	// For comparison: the Redis inbox around the same handler writing in its
	// own transaction (two Redis round trips added, no shared transaction).
	b.Run("with_redis_inbox", func(b *testing.B) {
		st := newRedisStore(b, redisinbox.Config{})
		ib, err := inbox.New(inbox.Config{ConsumerGroup: "bench", Handler: "h", Store: st, PurgeInterval: -1}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ib.Close()
		run(b, ib.Middleware(ownTx))
	})
}

// handleConcurrently handles n messages with h on 4 x GOMAXPROCS goroutines
// and returns the time it took.
func handleConcurrently(b *testing.B, h message.HandlerFunc, n int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				msg := message.NewMessage(watermill.NewUUID(), []byte("payload"))
				msg.SetContext(context.Background())
				if _, err := h(msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}
