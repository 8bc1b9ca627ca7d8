package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/redisinbox"
	"github.com/reliamq/reliamq/middleware/inbox"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/policy"
)

var errBoom = errors.New("boom")

// deliver runs the wrapped handler on a fresh copy of a message with uuid,
// as a subscriber would deliver it.
func deliver(h message.HandlerFunc, uuid string) error {
	msg := message.NewMessage(uuid, []byte("payload"))
	msg.SetContext(context.Background())
	_, err := h(msg)
	return err
}

func TestInbox_runs_the_handler_once_for_sequential_copies_of_a_UUID(t *testing.T) {
	forEachStore(t, func(t *testing.T, sc storeCase) {
		st := sc.new(t, nil)
		dups := &dupCounter{}
		ib := newInbox(t, inbox.Config{Store: st, Hooks: []any{dups}})
		r := newRuns()
		h := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			r.add(msg.UUID)
			return nil, nil
		})
		uuids := []string{watermill.NewUUID(), watermill.NewUUID(), watermill.NewUUID()}
		for copyN := 0; copyN < 3; copyN++ {
			for _, u := range uuids {
				if err := deliver(h, u); err != nil {
					t.Fatalf("delivery %d of %s: %v", copyN, u, err)
				}
			}
		}
		for _, u := range uuids {
			if got := r.get(u); got != 1 {
				t.Errorf("handler ran %d times for %s; want 1", got, u)
			}
		}
		if got := ib.Stats(); got.Processed != 3 || got.Duplicates != 6 || dups.total() != 6 {
			t.Errorf("stats %+v, duplicate hook %d; want 3 processed, 6 duplicates", got, dups.total())
		}
	})
}

// A second copy arriving while the first still runs must neither run beside
// it nor be lost: it waits (SQL row lock, Redis polling) and is then
// acknowledged as a duplicate.
func TestInbox_runs_concurrent_copies_of_a_UUID_once(t *testing.T) {
	forEachStore(t, func(t *testing.T, sc storeCase) {
		st := sc.new(t, nil)
		ib := newInbox(t, inbox.Config{Store: st})
		var fx *effects
		if st.db != nil {
			fx = newEffects(t, st.db, st.dialect)
		}
		r := newRuns()
		h := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			r.add(msg.UUID)
			time.Sleep(50 * time.Millisecond) // hold the claim while the others arrive
			if fx != nil {
				return nil, fx.write(msg)
			}
			return nil, nil
		})
		const copies = 8
		uuid := watermill.NewUUID()
		errs := make(chan error, copies)
		var wg sync.WaitGroup
		for range copies {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- deliver(h, uuid) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("a copy failed: %v", err)
			}
		}
		if got := r.get(uuid); got != 1 {
			t.Errorf("handler ran %d times; want 1", got)
		}
		if s := ib.Stats(); s.Processed != 1 || s.Duplicates != copies-1 {
			t.Errorf("stats %+v; want 1 processed, %d duplicates", s, copies-1)
		}
		if fx != nil {
			if got := fx.byUUID(t)[uuid]; got != 1 {
				t.Errorf("%d effects committed; want 1", got)
			}
		}
	})
}

// A failed run records nothing and, with SQL, its writes are rolled back:
// the redelivered copy runs the handler again and only its effect remains.
func TestInbox_a_failed_run_leaves_no_record_and_no_effect(t *testing.T) {
	forEachStore(t, func(t *testing.T, sc storeCase) {
		st := sc.new(t, nil)
		ib := newInbox(t, inbox.Config{Store: st})
		var fx *effects
		if st.db != nil {
			fx = newEffects(t, st.db, st.dialect)
		}
		r := newRuns()
		h := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			n := r.add(msg.UUID)
			if fx != nil {
				if err := fx.write(msg); err != nil {
					return nil, err
				}
			}
			switch n {
			case 1:
				return nil, errBoom
			case 2:
				panic("handler panic")
			}
			return nil, nil
		})
		uuid := watermill.NewUUID()
		if err := deliver(h, uuid); !errors.Is(err, errBoom) {
			t.Fatalf("first delivery = %v; want the handler's error", err)
		}
		func() {
			defer func() {
				if v := recover(); v == nil {
					t.Errorf("the handler's panic did not reach the caller")
				}
			}()
			_ = deliver(h, uuid)
		}()
		for range 2 {
			if err := deliver(h, uuid); err != nil {
				t.Fatalf("later delivery = %v", err)
			}
		}
		if got := r.get(uuid); got != 3 {
			t.Errorf("handler ran %d times; want 3 (error, panic, success; then a duplicate)", got)
		}
		if s := ib.Stats(); s.Processed != 1 || s.Failed != 2 || s.Duplicates != 1 {
			t.Errorf("stats %+v; want 1 processed, 2 failed, 1 duplicate", s)
		}
		if fx != nil {
			if got := fx.byUUID(t)[uuid]; got != 1 {
				t.Errorf("%d effects committed; want 1 (the failed runs' writes rolled back)", got)
			}
		}
	})
}

func TestInbox_records_are_kept_per_consumer_group_and_handler(t *testing.T) {
	forEachStore(t, func(t *testing.T, sc storeCase) {
		st := sc.new(t, nil)
		r := newRuns()
		uuid := watermill.NewUUID()
		for _, name := range [][2]string{{"g1", "h1"}, {"g1", "h2"}, {"g2", "h1"}, {"g1", "h1"}} {
			ib := newInbox(t, inbox.Config{Store: st, ConsumerGroup: name[0], Handler: name[1]})
			h := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				r.add(name[0] + "/" + name[1])
				return nil, nil
			})
			if err := deliver(h, uuid); err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]int{"g1/h1": 1, "g1/h2": 1, "g2/h1": 1}
		got := r.snapshot()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("runs %v; want %v", got, want)
				break
			}
		}
	})
}

func TestInbox_refuses_an_empty_UUID_as_a_permanent_error(t *testing.T) {
	forEachStore(t, func(t *testing.T, sc storeCase) {
		ib := newInbox(t, inbox.Config{Store: sc.new(t, nil)})
		ran := false
		h := ib.Middleware(func(*message.Message) ([]*message.Message, error) { ran = true; return nil, nil })
		err := deliver(h, "")
		if !errors.Is(err, inbox.ErrInvalidKey) || !policy.IsPermanent(err) {
			t.Errorf("empty UUID = %v; want a permanent ErrInvalidKey", err)
		}
		if ran {
			t.Error("the handler ran")
		}
	})
}

// Retention: a record lives until its retention is over and a purge deleted
// it; then a copy of the message runs the handler again.
func TestInbox_purge_deletes_expired_records_only(t *testing.T) {
	for _, sc := range storeCases[:3] {
		t.Run(sc.name, func(t *testing.T) {
			clk := clocktest.NewFake(time.Unix(1_700_000_000, 0))
			st := sc.new(t, clk)
			ib := newInbox(t, inbox.Config{Store: st, Retention: time.Hour, Clock: clk, PurgeBatch: 2, PurgePause: -1})
			r := newRuns()
			h := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) { r.add(msg.UUID); return nil, nil })
			old := []string{watermill.NewUUID(), watermill.NewUUID(), watermill.NewUUID()}
			for _, u := range old {
				if err := deliver(h, u); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(30 * time.Minute)
			young := watermill.NewUUID()
			if err := deliver(h, young); err != nil {
				t.Fatal(err)
			}
			if n, err := ib.Purge(context.Background()); err != nil || n != 0 {
				t.Fatalf("Purge before expiry = %d, %v; want 0", n, err)
			}
			clk.Advance(31 * time.Minute) // old ones expired, young not
			n, err := ib.Purge(context.Background())
			if err != nil || n != 3 {
				t.Fatalf("Purge = %d, %v; want 3 (in batches of 2)", n, err)
			}
			if c, err := st.sql.Count(context.Background(), "group", "handler"); err != nil || c != 1 {
				t.Fatalf("records left = %d, %v; want 1", c, err)
			}
			for _, u := range append(old, young) {
				if err := deliver(h, u); err != nil {
					t.Fatal(err)
				}
			}
			for _, u := range old {
				if r.get(u) != 2 {
					t.Errorf("purged %s ran %d times; want 2", u, r.get(u))
				}
			}
			if r.get(young) != 1 {
				t.Errorf("kept %s ran %d times; want 1", young, r.get(young))
			}
		})
	}
}

func TestRedis_records_expire_after_the_retention(t *testing.T) {
	st := newRedisStore(t, redisinbox.Config{})
	ib := newInbox(t, inbox.Config{Store: st, Retention: 90 * time.Minute})
	h := ib.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	uuid := watermill.NewUUID()
	if err := deliver(h, uuid); err != nil {
		t.Fatal(err)
	}
	ttl, err := st.client.PTTL(context.Background(), st.redis.Key(inbox.Key{ConsumerGroup: "group", Handler: "handler", UUID: uuid})).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 89*time.Minute || ttl > 90*time.Minute {
		t.Errorf("record TTL %v; want the retention, 90m", ttl)
	}
}

// A consumer that crashed while holding a Redis claim (no Commit, no Abort)
// holds the key until its lease ends; until then a copy waits Wait and gets
// ErrInProgress (retryable), afterwards it runs.
func TestRedis_a_crashed_claim_blocks_copies_until_its_lease_ends(t *testing.T) {
	st := newRedisStore(t, redisinbox.Config{Lease: 300 * time.Millisecond, Wait: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	key := inbox.Key{ConsumerGroup: "group", Handler: "handler", UUID: watermill.NewUUID()}
	if _, err := st.Begin(context.Background(), key, time.Hour); err != nil { // then "crash"
		t.Fatal(err)
	}
	ib := newInbox(t, inbox.Config{Store: st})
	r := newRuns()
	h := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) { r.add(msg.UUID); return nil, nil })
	err := deliver(h, key.UUID)
	if !errors.Is(err, inbox.ErrInProgress) || policy.IsPermanent(err) {
		t.Fatalf("copy during the lease = %v; want a retryable ErrInProgress", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = deliver(h, key.UUID)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || r.get(key.UUID) != 1 {
		t.Fatalf("copy after the lease = %v with %d runs; want it to run once", err, r.get(key.UUID))
	}
}

type purgeRecorder struct {
	mu sync.Mutex
	ps []inbox.PurgedParams
}

func (p *purgeRecorder) OnPurged(pp inbox.PurgedParams) {
	p.mu.Lock()
	p.ps = append(p.ps, pp)
	p.mu.Unlock()
}

func TestConfig_Validate(t *testing.T) {
	st := newSQLStore(t, "sqlite", openSQLite(t), nil)
	good := inbox.Config{ConsumerGroup: "g", Handler: "h", Store: st}
	ib, err := inbox.New(good, nil)
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	_ = ib.Close()
	var nilStore *redisinbox.Store
	tests := []struct {
		name string
		edit func(*inbox.Config)
	}{
		{"no group", func(c *inbox.Config) { c.ConsumerGroup = "" }},
		{"no handler", func(c *inbox.Config) { c.Handler = "" }},
		{"control character in handler", func(c *inbox.Config) { c.Handler = "a\nb" }},
		{"no store", func(c *inbox.Config) { c.Store = nil }},
		{"typed nil store", func(c *inbox.Config) { c.Store = nilStore }},
		{"negative retention", func(c *inbox.Config) { c.Retention = -time.Second }},
		{"negative batch", func(c *inbox.Config) { c.PurgeBatch = -1 }},
		{"hook of no kind", func(c *inbox.Config) { c.Hooks = []any{42} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			ib, err := inbox.New(cfg, nil)
			if !errors.Is(err, inbox.ErrInvalidConfig) {
				t.Errorf("New = %v; want ErrInvalidConfig", err)
			}
			if ib != nil {
				t.Error("New returned an Inbox with an error")
			}
		})
	}
}

// A router shutting down cancels the contexts of the messages in flight. A
// handler that finished its work meanwhile must still commit it: rolling it
// back would throw away a done run (and with database/sql, a transaction
// begun with the message's context is rolled back when that context ends).
func TestInbox_commits_a_run_whose_message_context_was_cancelled_meanwhile(t *testing.T) {
	for _, sc := range storeCases[:3] {
		t.Run(sc.name, func(t *testing.T) {
			st := sc.new(t, nil)
			ib := newInbox(t, inbox.Config{Store: st})
			fx := newEffects(t, st.db, st.dialect)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := ib.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				if err := fx.write(msg); err != nil {
					return nil, err
				}
				cancel() // the router shuts down while the handler returns
				time.Sleep(20 * time.Millisecond)
				return nil, nil
			})
			msg := message.NewMessage(watermill.NewUUID(), nil)
			msg.SetContext(ctx)
			if _, err := h(msg); err != nil {
				t.Fatalf("handler run = %v; want its work committed", err)
			}
			if got := fx.byUUID(t)[msg.UUID]; got != 1 {
				t.Fatalf("%d effects; want 1", got)
			}
			if err := deliver(h, msg.UUID); err != nil || ib.Stats().Duplicates != 1 {
				t.Fatalf("second copy = %v, stats %+v; want a duplicate", err, ib.Stats())
			}
		})
	}
}
