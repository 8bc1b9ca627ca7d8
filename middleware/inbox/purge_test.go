package inbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/inbox"
)

// seedExpired inserts n records that expired an hour ago, in one statement
// per 1,000 rows.
func seedExpired(t *testing.T, st store, n int) {
	t.Helper()
	past := time.Now().Add(-time.Hour).UnixMicro()
	for from := 0; from < n; from += 1000 {
		q := "INSERT INTO " + st.sql.Table() + " (consumer_group, handler, uuid, processed_at, expires_at) VALUES "
		for i := from; i < min(from+1000, n); i++ {
			if i > from {
				q += ", "
			}
			q += fmt.Sprintf("('old', 'h', 'u-%d', %d, %d)", i, past, past)
		}
		if _, err := st.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// Purging a large expired set must not stall consumption: it deletes in
// small batches, each its own short statement, so handlers keep committing
// between them. The test counts the messages handled while the purge was
// part-way (some expired records deleted, some left).
func TestInbox_purging_a_large_expired_set_does_not_stall_handlers(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL, sqlstore.SQLite} {
		t.Run(string(d), func(t *testing.T) {
			expired := 50_000
			if testing.Short() {
				expired = 5_000
			}
			st := newSQLStore(t, d, sqlstoretest.Open(t, d), nil)
			seedExpired(t, st, expired)
			fx := newEffects(t, st.db, d)
			purges := &purgeRecorder{}
			ib := newInbox(t, inbox.Config{Store: st, PurgeInterval: time.Millisecond, PurgeBatch: 200,
				PurgePause: time.Millisecond, Hooks: []any{purges}})
			h := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) { return nil, fx.write(msg) })

			handled, handledDuringPurge := 0, 0
			deadline := time.Now().Add(2 * time.Minute)
			for {
				left := expired - int(ib.Stats().Purged)
				if err := deliver(h, watermill.NewUUID()); err != nil {
					t.Fatal(err)
				}
				handled++
				// Handled while the purge was part-way: some expired records
				// were deleted before this message and some were left after.
				if left < expired && expired-int(ib.Stats().Purged) > 0 {
					handledDuringPurge++
				}
				if left == 0 || time.Now().After(deadline) {
					break
				}
			}
			if got := ib.Stats().Purged; got != int64(expired) {
				t.Fatalf("purged %d of %d expired records", got, expired)
			}
			if n, err := st.sql.Count(context.Background(), "old", "h"); err != nil || n != 0 {
				t.Fatalf("expired records left: %d, %v", n, err)
			}
			if got := len(fx.byUUID(t)); got != handled {
				t.Fatalf("%d effects for %d handled messages", got, handled)
			}
			if handledDuringPurge == 0 {
				t.Fatalf("no message was handled while the purge was part-way (%d handled in all)", handled)
			}
			t.Logf("%s: %d expired records purged in batches of 200; %d messages handled, %d of them while the purge was part-way",
				d, expired, handled, handledDuringPurge)
		})
	}
}

func TestInbox_Close_stops_the_purger(t *testing.T) {
	st := newSQLStore(t, sqlstore.SQLite, openSQLite(t), nil)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	purges := &purgeRecorder{}
	ib, err := inbox.New(inbox.Config{ConsumerGroup: "g", Handler: "h", Store: st,
		PurgeInterval: time.Millisecond, Hooks: []any{purges}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		purges.mu.Lock()
		n := len(purges.ps)
		purges.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := ib.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ib.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	purges.mu.Lock()
	n := len(purges.ps)
	purges.mu.Unlock()
	if n < 2 {
		t.Fatalf("the purger ran %d times before Close; want it running", n)
	}
	if _, err := ib.Purge(context.Background()); err == nil {
		t.Error("Purge after Close = nil; want ErrClosed")
	}
}
