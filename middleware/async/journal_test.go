package async_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/journal"
)

func journalStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, AutoInitialize: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestJournal_mode_commits_before_Publish_returns_and_sends_through_the_inner_publisher(t *testing.T) {
	st := journalStore(t)
	var up atomic.Bool
	inner := &fakepub.Publisher{Func: func(string, []*message.Message) error {
		if !up.Load() {
			return errors.New("broker down")
		}
		return nil
	}}
	p, err := async.NewPublisher(inner, async.Config{Journal: &journal.Config{Store: st, CloseTimeout: 5 * time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
	if err := p.Publish("orders", msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
	rows, err := st.List(context.Background(), sqlstore.Filter{Queue: journal.DefaultQueue})
	if err != nil || len(rows) != 1 || rows[0].UUID != msg.UUID {
		t.Fatalf("journal after Publish: %v, %v", rows, err)
	}
	up.Store(true)
	if err := p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := inner.UUIDs(); len(got) != 1 || got[0] != msg.UUID || !inner.Closed() {
		t.Fatalf("sent %v, inner closed %v", got, inner.Closed())
	}
	if err := p.Publish("orders", message.NewMessage(watermill.NewUUID(), nil)); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

func TestJournal_mode_config_errors_name_the_field(t *testing.T) {
	st := journalStore(t)
	for name, cfg := range map[string]async.Config{
		"Leftovers": {Journal: &journal.Config{Store: st}, Leftovers: fakepub.Nop},
		"Journal":   {Journal: &journal.Config{}},
	} {
		_, err := async.NewPublisher(fakepub.Nop, cfg, nil)
		if !errors.Is(err, async.ErrInvalidConfig) || !containsText(err.Error(), name+":") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func containsText(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
