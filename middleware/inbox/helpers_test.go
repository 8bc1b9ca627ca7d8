package inbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/redisinbox"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/inbox"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

func TestMain(m *testing.M) {
	rocketmqtest.VerifyNoLeaks(m,
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream.(*Subscriber).read"))
}

// store is one inbox store under test. db is the SQL database the records
// live in, nil for Redis.
type store struct {
	inbox.Store
	db      *sql.DB
	dialect sqlstore.Dialect
	sql     *sqlstore.Inbox
	redis   *redisinbox.Store
	client  *redis.Client
}

type storeCase struct {
	name string
	new  func(t *testing.T, clk clock.Clock) store
}

func sqlCase(name string, d sqlstore.Dialect) storeCase {
	return storeCase{name: name, new: func(t *testing.T, clk clock.Clock) store {
		return newSQLStore(t, d, sqlstoretest.Open(t, d), clk)
	}}
}

func newSQLStore(t testing.TB, d sqlstore.Dialect, db *sql.DB, clk clock.Clock) store {
	t.Helper()
	table := sqlstoretest.UniqueName("inbox")
	sqlstoretest.DropAtCleanup(t, db, table)
	ib, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db, Dialect: d, Table: table, AutoInitialize: true, Clock: clk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return store{Store: ib, db: db, dialect: d, sql: ib}
}

var redisCase = storeCase{name: "redis", new: func(t *testing.T, clk clock.Clock) store {
	return newRedisStore(t, redisinbox.Config{Clock: clk})
}}

func newRedisStore(t testing.TB, cfg redisinbox.Config) store {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: servicetest.Redis.Addr(t)})
	cfg.Client = client
	cfg.Prefix = "reliamq:test:" + sqlstoretest.UniqueName("inbox") + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, cfg.Prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		_ = client.Close()
	})
	st, err := redisinbox.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return store{Store: st, redis: st, client: client}
}

var storeCases = []storeCase{
	sqlCase("sqlite", sqlstore.SQLite),
	sqlCase("postgres", sqlstore.Postgres),
	sqlCase("mysql", sqlstore.MySQL),
	redisCase,
}

func forEachStore(t *testing.T, fn func(t *testing.T, sc storeCase)) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) { fn(t, sc) })
	}
}

func newInbox(t testing.TB, cfg inbox.Config) *inbox.Inbox {
	t.Helper()
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup = "group"
	}
	if cfg.Handler == "" {
		cfg.Handler = "handler"
	}
	if cfg.PurgeInterval == 0 {
		cfg.PurgeInterval = -1
	}
	ib, err := inbox.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ib.Close() })
	return ib
}

// effects is a table of handler effects, one row per run, written in the
// inbox's transaction.
type effects struct {
	db    *sql.DB
	table string
	ph    string
}

func newEffects(t testing.TB, db *sql.DB, d sqlstore.Dialect) *effects {
	t.Helper()
	table := sqlstoretest.UniqueName("effects")
	sqlstoretest.DropAtCleanup(t, db, table)
	if _, err := db.Exec("CREATE TABLE " + table + " (uuid VARCHAR(255) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	ph := "?"
	if d == sqlstore.Postgres {
		ph = "$1"
	}
	return &effects{db: db, table: table, ph: ph}
}

// write records one effect of msg through the inbox's transaction.
func (e *effects) write(msg *message.Message) error {
	tx := inbox.Tx(msg.Context())
	if tx == nil {
		return fmt.Errorf("no inbox transaction in the message context")
	}
	_, err := tx.ExecContext(msg.Context(), "INSERT INTO "+e.table+" (uuid) VALUES ("+e.ph+")", msg.UUID)
	return err
}

// byUUID counts the committed effects per UUID.
func (e *effects) byUUID(t testing.TB) map[string]int {
	t.Helper()
	rows, err := e.db.Query("SELECT uuid FROM " + e.table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		out[u]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// runs counts handler runs by UUID.
type runs struct {
	mu sync.Mutex
	n  map[string]int
}

func newRuns() *runs { return &runs{n: map[string]int{}} }

func (r *runs) add(uuid string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[uuid]++
	return r.n[uuid]
}

func (r *runs) get(uuid string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[uuid]
}

func (r *runs) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.n))
	for k, v := range r.n {
		out[k] = v
	}
	return out
}

type dupCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *dupCounter) OnDuplicate(p inbox.DuplicateParams) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[p.MessageUUID]++
}

func (d *dupCounter) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := 0
	for _, v := range d.n {
		s += v
	}
	return s
}

func openSQLite(t testing.TB) *sql.DB { return sqlstoretest.Open(t, sqlstore.SQLite) }

func redisinboxConfig() redisinbox.Config { return redisinbox.Config{} }
