package journal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/middleware/journal"
)

func ExampleNew() {
	dir, _ := os.MkdirTemp("", "journal-example-")
	defer os.RemoveAll(dir)

	// The journal: an SQLite file; NORMAL survives a kill of the process
	// (FULL, the default, a power loss too).
	db, err := sqlite.Open(filepath.Join(dir, "journal.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.Exec("PRAGMA synchronous=NORMAL"); err != nil {
		panic(err)
	}
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, Table: "reliamq_journal", AutoInitialize: true}, nil)
	if err != nil {
		panic(err)
	}

	// The broker publisher; with RocketMQ, a *rocketmq.Publisher.
	broker := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 10}, watermill.NopLogger{})
	delivered, _ := broker.Subscribe(context.Background(), "orders")

	pub, err := journal.New(broker, journal.Config{Store: st}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	for _, id := range []string{"order-1", "order-2"} {
		// nil: the message is in the file; a crash from here on loses nothing.
		if err := pub.Publish("orders", message.NewMessage(id, []byte(`{}`))); err != nil {
			fmt.Println("not journaled:", err)
		}
	}
	var got []string
	for range 2 {
		m := <-delivered
		got = append(got, m.UUID)
		m.Ack()
	}
	// Close waits for the journal to empty, then closes the broker publisher.
	if err := pub.Close(); err != nil {
		fmt.Println("close:", err)
	}
	sort.Strings(got)
	fmt.Println("delivered:", got)
	s, _ := pub.Stats(context.Background())
	fmt.Printf("journaled %d, sent %d, left %d\n", s.Journaled, s.Relay.Sent, s.Relay.Backlog)
	// Output:
	// delivered: [order-1 order-2]
	// journaled 2, sent 2, left 0
}
