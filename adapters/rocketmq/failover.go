package rocketmq

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Publisher failover.
//
// The v2.1.2 client picks a queue of the topic for every send and keeps
// picking queues of a broker that died until its route refresh, every 30 s,
// drops them; its own retries do not avoid the broker of the failed attempt
// (the retry loop shadows the last queue). The publisher therefore chooses
// the queue itself, through a QueueSelector of its own (queueSelector):
//
//   - every request carries a token in its Message.Queue (which only the
//     manual selector reads, and the batch wrapper copies), in which the
//     selector writes the broker it chose; so the publisher knows the broker
//     of a failed send, and the selector knows that it is asked again for the
//     same request (the client retrying after a failed attempt);
//   - a broker that failed a send is down for brokerDownFor (doubling with
//     every failure in a row up to brokerDownMax): queues of other brokers are
//     chosen meanwhile, unless every broker of the topic is down;
//   - when that time is over, the broker is chosen again only after the name
//     servers list its master in the topic's route again (one lookup at a
//     time, in the background): a broker killed or stopped leaves the route
//     at once, so no send is spent on it until it registers again.

const (
	brokerDownFor = time.Second
	brokerDownMax = 30 * time.Second
)

// sendToken is the Message.Queue of a request: QueueId -1 marks it, and the
// selector writes the chosen broker's name into BrokerName.
func newSendToken() *primitive.MessageQueue { return &primitive.MessageQueue{QueueId: tokenQueueID} }

const tokenQueueID = -1

func isToken(q *primitive.MessageQueue) bool {
	return q != nil && q.QueueId == tokenQueueID && q.Topic == ""
}

// brokerHealth remembers the brokers sends failed on.
type brokerHealth struct {
	nameServers []string
	downCount   atomic.Int32 // len(down), read without the lock on every send

	mu   sync.Mutex
	down map[string]*downBroker

	checks     sync.WaitGroup
	stopChecks context.CancelFunc
	checkCtx   context.Context
	ns         *nameServerConn
	lookup     func(ctx context.Context, topic string) (*topicRouteInfo, error)
	now        func() time.Time
}

type downBroker struct {
	until    time.Time
	failures int  // in a row
	checking bool // a route lookup is under way
	back     bool // in the route again: chosen until it fails or succeeds
}

func newBrokerHealth(nameServers []string) *brokerHealth {
	ctx, cancel := context.WithCancel(context.Background())
	h := &brokerHealth{nameServers: nameServers, down: map[string]*downBroker{}, checkCtx: ctx, stopChecks: cancel, now: time.Now}
	h.ns = newNameServerConn(nameServers)
	h.lookup = h.ns.route
	return h
}

// close stops the route lookups and waits for them.
func (h *brokerHealth) close() {
	h.stopChecks()
	h.checks.Wait()
	h.ns.close()
}

// failed marks broker down after a failed send.
func (h *brokerHealth) failed(broker string) {
	if broker == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.down[broker]
	if d == nil {
		d = &downBroker{}
		h.down[broker] = d
		h.downCount.Store(int32(len(h.down)))
	}
	// Sends that fail together (those in flight when the broker died)
	// count as one failure; one after the down time, or after the broker
	// was taken back, is the next.
	now := h.now()
	if d.failures == 0 || d.back || !now.Before(d.until) {
		d.failures++
	}
	d.back = false
	if u := now.Add(downTime(d.failures)); u.After(d.until) {
		d.until = u
	}
}

// downTime is how long a broker is left alone after failures in a row.
func downTime(failures int) time.Duration {
	wait := brokerDownFor << min(failures-1, 5)
	return min(wait, brokerDownMax)
}

// succeeded forgets broker's failures.
func (h *brokerHealth) succeeded(broker string) {
	if h.downCount.Load() == 0 || broker == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.down[broker]; ok {
		delete(h.down, broker)
		h.downCount.Store(int32(len(h.down)))
	}
}

// usable reports, for each broker name, whether its queues may be chosen,
// and starts a route lookup for a broker whose down time is over. Called
// with the queues of topic; returns nil when every broker is usable.
func (h *brokerHealth) usable(topic string, mqs []*primitive.MessageQueue) map[string]bool {
	if h.downCount.Load() == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.down) == 0 {
		return nil
	}
	now := h.now()
	var out map[string]bool
	for _, q := range mqs {
		d := h.down[q.BrokerName]
		if d == nil {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		if _, seen := out[q.BrokerName]; seen {
			continue
		}
		out[q.BrokerName] = d.back
		if !d.back && !d.checking && !now.Before(d.until) {
			d.checking = true
			h.checks.Add(1)
			go h.check(topic, q.BrokerName)
		}
	}
	return out
}

// check asks the name servers whether broker's master is in topic's route
// again: then its queues are chosen again (the next failure marks it down for
// twice as long); otherwise it stays down for another while.
func (h *brokerHealth) check(topic, broker string) {
	defer h.checks.Done()
	ctx, cancel := context.WithTimeout(h.checkCtx, 3*time.Second)
	r, err := h.lookup(ctx, topic)
	cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.down[broker]
	if d == nil {
		return
	}
	d.checking = false
	if err == nil && r.Masters[broker] != "" {
		// Back in the route: chosen again. Its failures stay counted
		// until a send succeeds, so one more failure keeps it away for
		// longer.
		d.back = true
		return
	}
	d.until = h.now().Add(downTime(d.failures))
}

// queueSelector is the publisher's producer.QueueSelector: round robin (or
// the sharding key's hash) over the queues of brokers that are not down.
type queueSelector struct {
	health *brokerHealth
	hash   bool // HashShardingKey
	next   atomic.Uint32
}

// Select implements producer.QueueSelector.
func (s *queueSelector) Select(msg *primitive.Message, mqs []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	if len(mqs) == 0 {
		return nil
	}
	tok := msg.Queue
	if !isToken(tok) {
		tok = nil
	} else if tok.BrokerName != "" {
		// Asked again for the same request: the client retries after
		// the attempt on that broker failed.
		s.health.failed(tok.BrokerName)
	}
	q := s.choose(msg, mqs)
	if tok != nil {
		tok.BrokerName = q.BrokerName
	}
	return q
}

func (s *queueSelector) choose(msg *primitive.Message, mqs []*primitive.MessageQueue) *primitive.MessageQueue {
	if s.hash {
		if key := msg.GetShardingKey(); key != "" {
			// The client's hash, so keys keep their queues; no failover:
			// the key's order lives in its queue.
			h := fnv.New32a()
			_, _ = h.Write([]byte(key))
			i := int(h.Sum32()) % len(mqs)
			if i < 0 {
				i = -i
			}
			return mqs[i]
		}
	}
	usable := s.health.usable(mqs[0].Topic, mqs)
	pick := func(n int) int {
		if s.hash {
			return rand.IntN(n)
		}
		return int(s.next.Add(1) % uint32(n))
	}
	if usable == nil {
		return mqs[pick(len(mqs))]
	}
	n := 0
	for _, q := range mqs {
		if ok, marked := usable[q.BrokerName]; ok || !marked {
			n++
		}
	}
	if n == 0 {
		// Every broker is down: try them anyway.
		return mqs[pick(len(mqs))]
	}
	k := pick(n)
	for _, q := range mqs {
		if ok, marked := usable[q.BrokerName]; ok || !marked {
			if k == 0 {
				return q
			}
			k--
		}
	}
	return mqs[0]
}
