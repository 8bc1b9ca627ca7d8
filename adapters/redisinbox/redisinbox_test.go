package redisinbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/reliamq/reliamq/adapters/redisinbox"
	"github.com/reliamq/reliamq/pkg/inbox"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

func newStore(t *testing.T, cfg redisinbox.Config) *redisinbox.Store {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: servicetest.Redis.Addr(t)})
	t.Cleanup(func() { _ = client.Close() })
	cfg.Client = client
	cfg.Prefix = "reliamq:test:" + uuid.NewString() + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, cfg.Prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	st, err := redisinbox.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestNew_validates_its_config(t *testing.T) {
	var nilClient *redis.Client
	for _, cfg := range []redisinbox.Config{
		{},
		{Client: nilClient},
		{Client: redis.NewClient(&redis.Options{}), Lease: -time.Second},
	} {
		if _, err := redisinbox.New(cfg, nil); !errors.Is(err, redisinbox.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v; want ErrInvalidConfig", cfg, err)
		}
	}
}

// Keys are length-prefixed: a group or handler containing the separator
// cannot make two different keys collide.
func TestStore_keys_of_different_groups_and_handlers_never_collide(t *testing.T) {
	st := newStore(t, redisinbox.Config{})
	ctx := context.Background()
	a := inbox.Key{ConsumerGroup: "a:1", Handler: "b", UUID: "u"}
	b := inbox.Key{ConsumerGroup: "a", Handler: "1:b", UUID: "u"}
	if st.Key(a) == st.Key(b) {
		t.Fatalf("keys collide: %q", st.Key(a))
	}
	e, err := st.Begin(ctx, a, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e, err = st.Begin(ctx, b, time.Hour)
	if err != nil {
		t.Fatalf("Begin of the other key = %v; want a claim", err)
	}
	_ = e.Abort(ctx)
	if _, err := st.Begin(ctx, a, time.Hour); !errors.Is(err, inbox.ErrDuplicate) {
		t.Fatalf("Begin of the committed key = %v; want ErrDuplicate", err)
	}
}

// Abort releases only its own claim: after its lease expired and another run
// claimed the key, a late Abort of the first run must not free the key.
func TestStore_a_late_Abort_does_not_release_another_runs_claim(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: servicetest.Redis.Addr(t)})
	t.Cleanup(func() { _ = client.Close() })
	st := newStore(t, redisinbox.Config{Lease: 500 * time.Millisecond, Wait: 5 * time.Second, PollInterval: 10 * time.Millisecond})
	ctx := context.Background()
	k := inbox.Key{ConsumerGroup: "g", Handler: "h", UUID: uuid.NewString()}
	first, err := st.Begin(ctx, k, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.Begin(ctx, k, time.Hour) // waits for the first lease to end
	if err != nil {
		t.Fatalf("Begin after the lease = %v", err)
	}
	if err := first.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Exists(ctx, st.Key(k)).Result(); err != nil || n != 1 {
		t.Fatalf("after the late Abort the key exists %d times (%v); want the second run's claim kept", n, err)
	}
	if err := second.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Begin(ctx, k, time.Hour); !errors.Is(err, inbox.ErrDuplicate) {
		t.Fatalf("Begin after the second run committed = %v; want ErrDuplicate", err)
	}
}
