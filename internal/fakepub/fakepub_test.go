package fakepub_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
)

var errDown = errors.New("down")

func TestPublisher_answers_from_the_script_then_Err_and_records_only_accepted(t *testing.T) {
	p := &fakepub.Publisher{Script: []error{errDown, nil}, Err: errDown}
	for i, want := range []error{errDown, nil, errDown} {
		if err := p.Publish("t", message.NewMessage(string(rune('a'+i)), nil)); !errors.Is(err, want) && err != want {
			t.Fatalf("call %d: got %v, want %v", i, err, want)
		}
	}
	if got := p.UUIDs(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("accepted %v, want [b]", got)
	}
	if p.Calls() != 3 {
		t.Fatalf("calls %d, want 3", p.Calls())
	}
	if got := p.Sent(); len(got) != 3 || got[0][0] != "a" || got[1][0] != "b" || got[2][0] != "c" {
		t.Fatalf("sent %v, want [[a] [b] [c]]", got)
	}
	if p.Topics()[0] != "t" || p.Count()["b"] != 1 {
		t.Fatalf("topics %v count %v", p.Topics(), p.Count())
	}
}

func TestPublisher_Func_answers_after_the_script(t *testing.T) {
	p := &fakepub.Publisher{Script: []error{nil}, Func: func(_ string, msgs []*message.Message) error {
		if msgs[0].UUID == "bad" {
			return errDown
		}
		return nil
	}}
	_ = p.Publish("t", message.NewMessage("bad", nil)) // scripted: accepted
	if err := p.Publish("t", message.NewMessage("bad", nil)); !errors.Is(err, errDown) {
		t.Fatalf("got %v, want errDown", err)
	}
	if err := p.Publish("t", message.NewMessage("good", nil)); err != nil {
		t.Fatal(err)
	}
	if c := p.Count(); c["bad"] != 1 || c["good"] != 1 {
		t.Fatalf("count %v", c)
	}
}

func TestPublisher_WaitAccepted_waits_for_concurrent_publishers_and_times_out(t *testing.T) {
	p := &fakepub.Publisher{}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_ = p.Publish("t", message.NewMessage(string(rune('a'+i)), nil))
		}(i)
	}
	if !p.WaitAccepted(8, 5*time.Second) {
		t.Fatalf("accepted %d, want 8", len(p.Accepted()))
	}
	wg.Wait()
	if p.WaitAccepted(9, 20*time.Millisecond) {
		t.Fatal("WaitAccepted(9) reported success with 8 accepted")
	}
	if err := p.Close(); err != nil || !p.Closed() {
		t.Fatal("Close not recorded")
	}
	if err := fakepub.Nop.Publish("t", message.NewMessage("x", nil)); err != nil {
		t.Fatal(err)
	}
}
