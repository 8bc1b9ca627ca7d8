package inbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/middleware/inbox"
)

// A handler that charges an order once, however many times the order
// message arrives: the charge row and the inbox record commit together.
func ExampleInbox_ConsumerHandler() {
	dir, _ := os.MkdirTemp("", "inbox-example-")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(filepath.Join(dir, "shop.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE charges (order_uuid TEXT NOT NULL)"); err != nil {
		panic(err)
	}
	st, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db, Dialect: sqlstore.SQLite, AutoInitialize: true}, nil)
	if err != nil {
		panic(err)
	}
	ib, err := inbox.New(inbox.Config{ConsumerGroup: "billing", Handler: "charge", Store: st}, nil)
	if err != nil {
		panic(err)
	}
	defer ib.Close()

	charge := func(msg *message.Message) error {
		_, err := inbox.Tx(msg.Context()).ExecContext(msg.Context(), "INSERT INTO charges (order_uuid) VALUES (?)", msg.UUID)
		return err
	}
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router, _ := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	router.AddConsumerHandler("charge", "orders", ps, ib.ConsumerHandler(charge))
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()

	order := watermill.NewUUID()
	for range 3 { // the same order message, three times
		_ = ps.Publish("orders", message.NewMessage(order, []byte(`{"amount": 42}`)))
	}
	for s := ib.Stats(); s.Processed+s.Duplicates < 3; s = ib.Stats() {
		time.Sleep(time.Millisecond)
	}
	_ = router.Close()

	var charges int
	_ = db.QueryRow("SELECT COUNT(*) FROM charges WHERE order_uuid = ?", order).Scan(&charges)
	s := ib.Stats()
	fmt.Printf("charges: %d, processed: %d, duplicates skipped: %d\n", charges, s.Processed, s.Duplicates)
	// Output: charges: 1, processed: 1, duplicates skipped: 2
}
