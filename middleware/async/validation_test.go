package async_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

func TestPublisher_refuses_an_empty_uuid_at_once_and_queues_nothing(t *testing.T) {
	rec := newRecorder()
	pub := newPublisher(t, rec, async.Config{})
	good := message.NewMessage("good", nil)
	err := pub.Publish("orders", good, message.NewMessage("", nil))
	if !errors.Is(err, msgcheck.ErrEmptyUUID) || !policy.IsPermanent(err) {
		t.Fatalf("Publish = %v; want a permanent msgcheck.ErrEmptyUUID", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rec.Sent(); len(got) != 0 {
		t.Errorf("inner got %v; nothing of a refused call may be sent", got)
	}
	if s := pub.Stats(); s.Rejected != 1 {
		t.Errorf("Rejected = %d; want 1", s.Rejected)
	}
}

func TestPublisher_refuses_metadata_no_publisher_can_carry(t *testing.T) {
	rec := newRecorder()
	pub := newPublisher(t, rec, async.Config{})
	m := message.NewMessage("m", nil)
	m.Metadata.Set("k", "a\x00b")
	if err := pub.Publish("orders", m); !errors.Is(err, msgcheck.ErrInvalidMetadata) {
		t.Fatalf("Publish = %v; want msgcheck.ErrInvalidMetadata", err)
	}
}

func TestNewPublisher_refuses_a_typed_nil_inner_publisher_or_leftovers(t *testing.T) {
	var inner *recorder // a constructor that failed
	if _, err := async.NewPublisher(inner, async.Config{}, nil); !errors.Is(err, async.ErrInvalidConfig) {
		t.Errorf("NewPublisher(typed nil) = %v; want ErrInvalidConfig", err)
	}
	if _, err := async.NewPublisher(newRecorder(), async.Config{Leftovers: inner}, nil); !errors.Is(err, async.ErrInvalidConfig) {
		t.Errorf("NewPublisher(Leftovers: typed nil) = %v; want ErrInvalidConfig", err)
	}
}

func TestErrClosed_matches_the_shared_closed_sentinel(t *testing.T) {
	pub, err := async.NewPublisher(newRecorder(), async.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	err = pub.Publish("orders", message.NewMessage("m", nil))
	if !errors.Is(err, async.ErrClosed) || !errors.Is(err, policy.ErrClosed) {
		t.Fatalf("Publish after Close = %v; want async.ErrClosed and policy.ErrClosed", err)
	}
}
