package rocketmq

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func queuesOf(topic string, brokers ...string) []*primitive.MessageQueue {
	var mqs []*primitive.MessageQueue
	for _, b := range brokers {
		for i := 0; i < 4; i++ {
			mqs = append(mqs, &primitive.MessageQueue{Topic: topic, BrokerName: b, QueueId: i})
		}
	}
	return mqs
}

// fakeHealth is a brokerHealth whose clock and route lookups the test drives.
func fakeHealth(t *testing.T) (h *brokerHealth, now *time.Time, route func(masters ...string)) {
	t.Helper()
	h = newBrokerHealth([]string{"127.0.0.1:1"})
	t.Cleanup(h.close)
	clock := time.Unix(1000, 0)
	var mu sync.Mutex
	var masters map[string]string
	h.now = func() time.Time { return clock }
	h.lookup = func(context.Context, string) (*topicRouteInfo, error) {
		mu.Lock()
		defer mu.Unlock()
		if masters == nil {
			return nil, errors.New("unreachable")
		}
		return &topicRouteInfo{Masters: masters}, nil
	}
	return h, &clock, func(names ...string) {
		mu.Lock()
		defer mu.Unlock()
		masters = map[string]string{}
		for _, n := range names {
			masters[n] = n + ":10911"
		}
	}
}

func brokersChosen(s *queueSelector, mqs []*primitive.MessageQueue, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		m := primitive.NewMessage("t", nil)
		m.Queue = newSendToken()
		q := s.Select(m, mqs, "")
		out[q.BrokerName]++
		if m.Queue.BrokerName != q.BrokerName {
			panic("token not filled")
		}
	}
	return out
}

func TestQueueSelector_skips_a_failed_broker_until_the_route_lists_it_again(t *testing.T) {
	h, now, route := fakeHealth(t)
	s := &queueSelector{health: h}
	mqs := queuesOf("t", "broker-a", "broker-b")

	if got := brokersChosen(s, mqs, 16); got["broker-a"] != 8 || got["broker-b"] != 8 {
		t.Fatalf("both up: chosen %v; want round robin over both", got)
	}
	h.failed("broker-b")
	if got := brokersChosen(s, mqs, 16); got["broker-b"] != 0 {
		t.Fatalf("broker-b down: chosen %v; want broker-a only", got)
	}
	// Its down time is over but the route does not list it: a lookup runs,
	// and it stays down meanwhile and after.
	route("broker-a")
	*now = now.Add(2 * time.Second)
	brokersChosen(s, mqs, 1)
	h.checks.Wait()
	if got := brokersChosen(s, mqs, 16); got["broker-b"] != 0 {
		t.Fatalf("broker-b not in the route: chosen %v; want broker-a only", got)
	}
	// Listed again: chosen again after the next lookup.
	route("broker-a", "broker-b")
	*now = now.Add(2 * time.Second)
	brokersChosen(s, mqs, 1)
	h.checks.Wait()
	if got := brokersChosen(s, mqs, 16); got["broker-b"] != 8 {
		t.Fatalf("broker-b back in the route: chosen %v; want both again", got)
	}
	h.succeeded("broker-b")
	if h.downCount.Load() != 0 {
		t.Fatalf("a success did not forget the broker's failures")
	}
}

func TestQueueSelector_marks_the_broker_of_an_attempt_the_client_retries(t *testing.T) {
	h, _, _ := fakeHealth(t)
	s := &queueSelector{health: h}
	mqs := queuesOf("t", "broker-a", "broker-b")
	m := primitive.NewMessage("t", nil)
	m.Queue = newSendToken()
	first := s.Select(m, mqs, "").BrokerName
	// The client asks again for the same request: the attempt on first failed.
	for i := 0; i < 8; i++ {
		if again := s.Select(m, mqs, ""); again.BrokerName == first {
			t.Fatalf("retry %d chose %s again, the broker of the failed attempt", i, first)
		}
		m.Queue.BrokerName = "" // a fresh request
	}
}

func TestQueueSelector_tries_every_broker_when_all_are_down(t *testing.T) {
	h, _, _ := fakeHealth(t)
	s := &queueSelector{health: h}
	mqs := queuesOf("t", "broker-a", "broker-b")
	h.failed("broker-a")
	h.failed("broker-b")
	if got := brokersChosen(s, mqs, 16); got["broker-a"]+got["broker-b"] != 16 || got["broker-a"] == 0 || got["broker-b"] == 0 {
		t.Fatalf("all down: chosen %v; want both tried", got)
	}
}

func TestQueueSelector_keeps_a_sharding_key_on_its_queue(t *testing.T) {
	h, _, _ := fakeHealth(t)
	s := &queueSelector{health: h, hash: true}
	mqs := queuesOf("t", "broker-a", "broker-b")
	m := primitive.NewMessage("t", nil)
	m.WithShardingKey("order-42")
	want := s.Select(m, mqs, "")
	h.failed(want.BrokerName)
	if got := s.Select(m, mqs, ""); got != want {
		t.Fatalf("keyed message moved from %v to %v while its broker is down", want, got)
	}
}

func TestParseRoute_reads_a_java_name_server_route(t *testing.T) {
	body := []byte(`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10912"},"brokerName":"broker-a","cluster":"c"},` +
		`{"brokerAddrs":{1:"127.0.0.1:10922"},"brokerName":"broker-b","cluster":"c"}],"filterServerTable":{},` +
		`"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4},` +
		`{"brokerName":"broker-b","perm":6,"readQueueNums":2,"topicSysFlag":0,"writeQueueNums":2}]}`)
	r, err := parseRoute(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Masters) != 1 || r.Masters["broker-a"] != "127.0.0.1:10911" {
		t.Fatalf("masters %v; want broker-a only (broker-b has no master)", r.Masters)
	}
	if qs := r.readQueues("t"); len(qs) != 4 || qs[0].BrokerName != "broker-a" {
		t.Fatalf("read queues %v; want broker-a's 4", qs)
	}
	// Keys inside strings stay as they are.
	if got := string(quoteNumericKeys([]byte(`{"a":"{0:1}",1:"x"}`))); got != `{"a":"{0:1}","1":"x"}` {
		t.Fatalf("quoteNumericKeys = %s", got)
	}
}

func TestBrokerHealth_counts_sends_that_fail_together_as_one_failure(t *testing.T) {
	h, now, _ := fakeHealth(t)
	for i := 0; i < 8; i++ { // in flight together when the broker died
		h.failed("broker-b")
	}
	if d := h.down["broker-b"]; d.failures != 1 || d.until != now.Add(brokerDownFor) {
		t.Fatalf("after 8 failures at once: %d failures, down until +%s; want 1 and +%s",
			d.failures, d.until.Sub(*now), brokerDownFor)
	}
	*now = now.Add(brokerDownFor)
	h.failed("broker-b") // tried again after its down time: the next failure
	if d := h.down["broker-b"]; d.failures != 2 || d.until != now.Add(2*brokerDownFor) {
		t.Fatalf("a failure after the down time: %d failures, down until +%s; want 2 and +%s",
			d.failures, d.until.Sub(*now), 2*brokerDownFor)
	}
}
