// Command outbox shows the transactional outbox: an order row and its
// "order placed" event are written in one SQL transaction, so the event
// exists if and only if the order committed; a fallback.Relay then delivers
// the event to the broker and deletes its row.
//
//	go run ./examples/outbox                                   # SQLite in a temporary directory
//	go run ./examples/outbox --dsn 'postgres://root@127.0.0.1:5432/test?sslmode=disable'
//	go run ./examples/outbox --dsn 'mysql://root@tcp(127.0.0.1:3306)/test'
//
// The broker is Watermill's gochannel here; any message.Publisher works, the
// RocketMQ one included. The run exits with status 0 when every committed
// order's event was delivered, the rolled-back order left neither row nor
// event, and the outbox is empty.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/examples/internal/exampledb"
	"github.com/reliamq/reliamq/middleware/fallback"
)

const topicOrderPlaced = "order_placed"

// Config configures Run.
type Config struct {
	// DSN selects the database (see exampledb); "" is a temporary SQLite file.
	DSN string
	// OrdersTable is the business table. Default "outbox_example_orders".
	OrdersTable string
	// OutboxTable is the outbox (sqlstore) table. Default "reliamq_outbox".
	OutboxTable string
	// Keep keeps the tables this run created; by default Run drops them at
	// the end (tables that existed before are never dropped).
	Keep bool
}

// Result says what happened, by event UUID.
type Result struct {
	// Committed are the UUIDs of the events written with committed orders.
	Committed []string
	// RolledBack is the UUID of the event written in the rolled-back transaction.
	RolledBack string
	// Delivered counts deliveries per event UUID.
	Delivered map[string]int
	// Orders is the number of rows in the orders table at the end.
	Orders int
	// OutboxLeft is the number of outbox rows left at the end.
	OutboxLeft int64
}

// Check compares the result with what the outbox promises.
func (r Result) Check() error {
	var errs []error
	for _, id := range r.Committed {
		if r.Delivered[id] == 0 {
			errs = append(errs, fmt.Errorf("event %s of a committed order was not delivered", id))
		}
	}
	if r.Delivered[r.RolledBack] != 0 {
		errs = append(errs, fmt.Errorf("event %s of the rolled-back order was delivered", r.RolledBack))
	}
	if r.Orders != len(r.Committed) {
		errs = append(errs, fmt.Errorf("%d orders in the table, want %d", r.Orders, len(r.Committed)))
	}
	if r.OutboxLeft != 0 {
		errs = append(errs, fmt.Errorf("%d rows left in the outbox", r.OutboxLeft))
	}
	return errors.Join(errs...)
}

func main() {
	var cfg Config
	flag.StringVar(&cfg.DSN, "dsn", os.Getenv("RELIAMQ_DSN"), "database: postgres://..., mysql://user:pass@host:3306/db, user@tcp(host:3306)/db, sqlite:/path; empty: temporary SQLite. [RELIAMQ_DSN]")
	flag.StringVar(&cfg.OrdersTable, "orders-table", "outbox_example_orders", "business table (created if missing)")
	flag.StringVar(&cfg.OutboxTable, "outbox-table", "reliamq_outbox", "outbox table (created if missing)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the tables this run created (by default they are dropped at the end)")
	flag.Parse()
	res, err := Run(context.Background(), cfg, os.Stdout)
	if err == nil {
		err = res.Check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outbox:", err)
		os.Exit(1)
	}
}

// Run places three orders (two committed, one rolled back) and lets the relay
// deliver the events.
func Run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	if cfg.OrdersTable == "" {
		cfg.OrdersTable = "outbox_example_orders"
	}
	if cfg.OutboxTable == "" {
		cfg.OutboxTable = "reliamq_outbox"
	}
	for _, table := range []string{cfg.OrdersTable, cfg.OutboxTable} {
		if err := sqlstore.ValidateTable(table); err != nil {
			return Result{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res := Result{Delivered: map[string]int{}}
	logger := watermill.NopLogger{}

	db, err := exampledb.Open(cfg.DSN)
	if err != nil {
		return res, err
	}
	defer db.Close()
	fmt.Fprintf(out, "database %s; orders in %s, outbox in %s\n", db.Where, cfg.OrdersTable, cfg.OutboxTable)
	if !cfg.Keep {
		// Drop what this run creates, and only that, when it ends.
		var created []string
		for _, table := range []string{cfg.OrdersTable, cfg.OutboxTable} {
			if !tableExists(ctx, db.DB, table) {
				created = append(created, table)
			}
		}
		defer func() {
			for _, table := range created {
				if _, err := db.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+table); err != nil {
					fmt.Fprintf(out, "dropping %s: %v\n", table, err)
				}
			}
			if len(created) > 0 {
				fmt.Fprintf(out, "dropped %s, created by this run (--keep keeps them)\n", strings.Join(created, " and "))
			}
		}()
	}
	if _, err := db.ExecContext(ctx, createOrders(db.Dialect, cfg.OrdersTable)); err != nil {
		return res, fmt.Errorf("create %s: %w", cfg.OrdersTable, err)
	}
	store, err := sqlstore.New(sqlstore.Config{DB: db.DB, Dialect: db.Dialect, Table: cfg.OutboxTable, AutoInitialize: true}, logger)
	if err != nil {
		return res, err
	}
	outbox, err := fallback.NewOutbox(fallback.OutboxConfig{Store: store})
	if err != nil {
		return res, err
	}

	// The broker and a consumer of the events.
	broker := gochannel.NewGoChannel(gochannel.Config{}, logger)
	defer broker.Close()
	events, err := broker.Subscribe(ctx, topicOrderPlaced)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	got := make(chan struct{}, 16)
	go func() {
		for msg := range events {
			mu.Lock()
			res.Delivered[msg.UUID]++
			fmt.Fprintf(out, "consumer: event %s for order %s delivered\n", msg.UUID[:8], msg.Metadata.Get("order_id"))
			mu.Unlock()
			msg.Ack()
			got <- struct{}{}
		}
	}()

	insert := insertOrder(db.Dialect, cfg.OrdersTable)
	place := func(customer string, amount int64, commit bool, usePublisher bool) (string, error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return "", err
		}
		defer tx.Rollback() // no-op after Commit
		orderID, err := insertReturningID(ctx, tx, db.Dialect, insert, customer, amount)
		if err != nil {
			return "", err
		}
		event := message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, `{"orderId":%d,"amount":%d}`, orderID, amount))
		event.Metadata.Set("order_id", fmt.Sprint(orderID))
		if usePublisher {
			// Code written against message.Publisher can take the outbox too.
			err = outbox.TxPublisher(ctx, tx).Publish(topicOrderPlaced, event)
		} else {
			err = outbox.WriteTx(ctx, tx, topicOrderPlaced, event)
		}
		if err != nil {
			return "", err
		}
		if !commit {
			fmt.Fprintf(out, "order %d for %s: stock check failed after the event was written -> ROLLBACK\n", orderID, customer)
			return event.UUID, tx.Rollback()
		}
		if err := tx.Commit(); err != nil {
			return "", err
		}
		fmt.Fprintf(out, "order %d for %s: order row and event %s committed together\n", orderID, customer, event.UUID[:8])
		return event.UUID, nil
	}

	id, err := place("alice", 1200, true, false)
	if err != nil {
		return res, err
	}
	res.Committed = append(res.Committed, id)
	if res.RolledBack, err = place("bob", 99900, false, false); err != nil {
		return res, err
	}
	if id, err = place("carol", 450, true, true); err != nil {
		return res, err
	}
	res.Committed = append(res.Committed, id)
	st, err := store.Stats(ctx, "")
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "outbox holds %d rows, nothing sent yet; starting the relay\n", st.Backlog)

	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: store, Publisher: broker, PollInterval: 100 * time.Millisecond}, logger)
	if err != nil {
		return res, err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	for range res.Committed {
		select {
		case <-got:
		case <-ctx.Done():
			stopRelay()
			<-relayDone
			return res, fmt.Errorf("events not delivered: %w", ctx.Err())
		}
	}
	// Rows are deleted after the batch is sent; wait for the table to empty.
	for {
		if st, err = store.Stats(ctx, ""); err != nil || st.Backlog == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopRelay()
	if err := <-relayDone; err != nil {
		return res, err
	}
	res.OutboxLeft = st.Backlog
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+cfg.OrdersTable).Scan(&res.Orders); err != nil {
		return res, err
	}
	rs, _ := relay.Stats(ctx)
	mu.Lock()
	fmt.Fprintf(out, "relay sent %d events; outbox holds %d rows; %d orders in %s; rolled-back event delivered %d times\n",
		rs.Sent, res.OutboxLeft, res.Orders, cfg.OrdersTable, res.Delivered[res.RolledBack])
	mu.Unlock()
	return res, nil
}

// tableExists reports whether table can be queried.
func tableExists(ctx context.Context, db *sql.DB, table string) bool {
	rows, err := db.QueryContext(ctx, "SELECT 1 FROM "+table+" WHERE 1 = 0")
	if err != nil {
		return false
	}
	_ = rows.Close()
	return true
}

func createOrders(d sqlstore.Dialect, table string) string {
	switch d {
	case sqlstore.Postgres:
		return "CREATE TABLE IF NOT EXISTS " + table + " (id BIGSERIAL PRIMARY KEY, customer TEXT NOT NULL, amount BIGINT NOT NULL)"
	case sqlstore.MySQL:
		return "CREATE TABLE IF NOT EXISTS " + table + " (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(255) NOT NULL, amount BIGINT NOT NULL)"
	default:
		return "CREATE TABLE IF NOT EXISTS " + table + " (id INTEGER PRIMARY KEY AUTOINCREMENT, customer TEXT NOT NULL, amount INTEGER NOT NULL)"
	}
}

func insertOrder(d sqlstore.Dialect, table string) string {
	if d == sqlstore.Postgres {
		return "INSERT INTO " + table + " (customer, amount) VALUES ($1, $2) RETURNING id"
	}
	return "INSERT INTO " + table + " (customer, amount) VALUES (?, ?)"
}

func insertReturningID(ctx context.Context, tx *sql.Tx, d sqlstore.Dialect, q, customer string, amount int64) (int64, error) {
	if d == sqlstore.Postgres {
		var id int64
		err := tx.QueryRowContext(ctx, q, customer, amount).Scan(&id)
		return id, err
	}
	r, err := tx.ExecContext(ctx, q, customer, amount)
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}
