package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/pkg/policy"
)

// Following brokers that leave and come back.
//
// The v2.1.2 client re-reads routes every 30 s and rebalances every 20 s, and
// a pull that was waiting on a broker's connection when the broker died waits
// out its 30 s timeout (closing a connection does not fail the requests on
// it), then 3 s more: a broker that comes back was consumed again only after
// about 33 s. Each subscription therefore reads its topics' routes from the
// name servers every RoutePollInterval (routeWatcher) and, when a broker's
// master leaves a route, hands the client the new queue list and rebalances,
// which drops that broker's queues and their stuck pulls; when a master
// comes back (or changes address, or the name servers answer again after
// none did, so any broker may have restarted unseen), it drops the broker's
// queues if the client still holds them and adds them again, so they get
// fresh pulls at once (and
// the client's heartbeat, which a rebalance that changes queues sends, tells
// the restarted broker about the consumer). Lookups and rebalances that fail
// are done again on the next few rounds.
//
// The queue allocation (allocate) also keeps the queues a member has when
// the broker asked for the group's members does not list it: a restarted
// broker knows no consumer until their next heartbeat, and the client would
// otherwise drop every queue until its next rebalance.

// rebalancer is what the client's push consumer offers beyond
// rocketmq.PushConsumer that the watcher uses.
type rebalancer interface {
	UpdateTopicSubscribeInfo(topic string, mqs []*primitive.MessageQueue)
	RebalanceIfNotPaused()
}

// settleRounds is how many more rounds the watcher hands the client a changed
// route and rebalances, for rebalances that failed (the client asks a random
// broker of the route for the group's members, maybe the one that just died).
const settleRounds = 3

// routeLookupTimeout bounds one route lookup of the watcher.
const routeLookupTimeout = 3 * time.Second

// watchRoutes runs until ctx ends. topics are the client's names (namespace
// included).
func (sub *subscription) watchRoutes(ctx context.Context, rb rebalancer, topics []string, interval time.Duration) {
	ns := newNameServerConn(sub.s.cfg.NameServers)
	defer ns.close()
	last := map[string]map[string]string{} // topic -> broker -> master address
	settle := map[string]int{}
	blind := map[string]bool{}    // the last lookup got no answer
	t := time.NewTicker(interval) // real time: brokers come back in real time
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, topic := range topics {
			lctx, cancel := context.WithTimeout(ctx, routeLookupTimeout)
			r, err := ns.route(lctx, topic)
			cancel()
			switch {
			case err == nil:
			case errors.Is(err, errNoRoute):
				r = &topicRouteInfo{}
			default:
				// No name server answered: maybe they are down with the
				// brokers (rocketmqtest serves both), which may restart
				// unseen meanwhile.
				blind[topic] = true
				continue
			}
			prev, seen := last[topic]
			last[topic] = r.Masters
			if !seen {
				continue
			}
			wasBlind := blind[topic]
			delete(blind, topic)
			var back, gone []string
			for name, addr := range r.Masters {
				if prev[name] != addr || wasBlind {
					back = append(back, name)
				}
			}
			for name := range prev {
				if _, ok := r.Masters[name]; !ok {
					gone = append(gone, name)
				}
			}
			if ctx.Err() != nil {
				return
			}
			if len(back) > 0 {
				sub.s.logger.Info("Broker back in the route; consuming its queues again", map[string]any{
					"topic": topic, "brokers": back})
				without := &topicRouteInfo{Masters: map[string]string{}, Queues: r.Queues}
				for name, addr := range r.Masters {
					if !slices.Contains(back, name) {
						without.Masters[name] = addr
					}
				}
				rb.UpdateTopicSubscribeInfo(topic, without.readQueues(topic))
				rb.RebalanceIfNotPaused()
				settle[topic] = settleRounds + 1
			} else if len(gone) > 0 {
				sub.s.logger.Info("Broker left the route; leaving its queues", map[string]any{
					"topic": topic, "brokers": gone})
				settle[topic] = settleRounds + 1
			}
			if settle[topic] > 0 {
				settle[topic]--
				rb.UpdateTopicSubscribeInfo(topic, r.readQueues(topic))
				rb.RebalanceIfNotPaused()
			}
		}
	}
}

// allocation is a subscription's queue allocation strategy: the client's
// AllocateByAveragely, except that a member the broker did not list keeps
// the queues it had, and the first allocation that lists it marks the
// subscription ready.
type allocation struct {
	topic     string // the subscribed topic, namespace included
	broadcast bool   // every queue is consumed: the client allocates nothing
	ready     chan struct{}

	mu   sync.Mutex
	prev map[string][]*primitive.MessageQueue // by topic
	once sync.Once

	// releasing makes every allocation empty, so that a rebalance before
	// Shutdown hands back all queues (see subscription.releaseQueues).
	releasing atomic.Bool
}

func newAllocation(topic string, broadcast bool) *allocation {
	a := &allocation{topic: topic, broadcast: broadcast, ready: make(chan struct{}), prev: map[string][]*primitive.MessageQueue{}}
	if broadcast {
		close(a.ready) // holdsAllocated waits for the topic's queues instead
	}
	return a
}

// allocate implements consumer.AllocateStrategy.
func (a *allocation) allocate(group, cid string, mqAll []*primitive.MessageQueue, cidAll []string) []*primitive.MessageQueue {
	if len(mqAll) == 0 || a.releasing.Load() {
		return nil
	}
	topic := mqAll[0].Topic
	a.mu.Lock()
	defer a.mu.Unlock()
	if !slices.Contains(cidAll, cid) {
		var keep []*primitive.MessageQueue
		for _, q := range a.prev[topic] {
			if slices.ContainsFunc(mqAll, func(m *primitive.MessageQueue) bool { return *m == *q }) {
				keep = append(keep, q)
			}
		}
		return keep
	}
	out := consumer.AllocateByAveragely(group, cid, mqAll, cidAll)
	a.prev[topic] = out
	if topic == a.topic {
		a.once.Do(func() { close(a.ready) })
	}
	return out
}

// WaitReady waits until every subscription of topic running on this
// Subscriber has been assigned its share of the topic's queues by a first
// rebalance (none when the group has more members than the topic has
// queues), or ctx ends. Subscribe returns once the consumer has started;
// the client assigns queues a moment later, and messages published before
// that are only delivered if the group starts from the first offset (the
// default) or already has offsets. Call it after Subscribe (with a Router,
// after Running() is closed); it returns ErrNotSubscribed when no
// subscription of topic is running.
func (s *Subscriber) WaitReady(ctx context.Context, topic string) error {
	s.mu.Lock()
	subs := slices.Clone(s.subs[topic])
	s.mu.Unlock()
	if len(subs) == 0 {
		return fmt.Errorf("%w: %q", ErrNotSubscribed, topic)
	}
	for _, sub := range subs {
		select {
		case <-sub.alloc.ready:
		case <-sub.stop:
			return policy.Permanent(ErrClosed)
		case <-ctx.Done():
			return ctx.Err()
		}
		// The client sets a queue up (its starting offset) after the
		// allocation: wait until it holds every queue allocated.
		for !sub.holdsAllocated() {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-sub.stop:
				return policy.Permanent(ErrClosed)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// holdsAllocated reports whether the client has set up every queue of the
// subscribed topic last allocated to it. The client tells only through its
// GetConsumerRunningInfo (whose type is internal to it), read by reflection;
// a client without it counts as ready once allocated.
func (sub *subscription) holdsAllocated() bool {
	m := reflect.ValueOf(sub.consumer).MethodByName("GetConsumerRunningInfo")
	if !m.IsValid() || m.Type().NumIn() != 1 || m.Type().In(0).Kind() != reflect.Bool || m.Type().NumOut() != 1 {
		return true
	}
	info := m.Call([]reflect.Value{reflect.ValueOf(false)})[0]
	if info.Kind() != reflect.Pointer || info.IsNil() {
		return true
	}
	table := info.Elem().FieldByName("MQTable")
	if !table.IsValid() || table.Kind() != reflect.Map || table.Type().Key() != reflect.TypeOf(primitive.MessageQueue{}) {
		return true
	}
	if sub.alloc.broadcast {
		// Every queue of the topic: ready once the client holds one.
		for _, k := range table.MapKeys() {
			if q, ok := k.Interface().(primitive.MessageQueue); ok && q.Topic == sub.alloc.topic {
				return true
			}
		}
		return false
	}
	sub.alloc.mu.Lock()
	want := slices.Clone(sub.alloc.prev[sub.alloc.topic])
	sub.alloc.mu.Unlock()
	for _, q := range want {
		if !table.MapIndex(reflect.ValueOf(*q)).IsValid() {
			return false
		}
	}
	return true
}

// releaseQueues hands every queue of a clustering subscription back before
// Shutdown: a rebalance with an empty allocation makes the client persist each
// queue's offset and remove the queue, as it does when another member takes
// it. The v2.1.2 client's Shutdown closes the message channel of every queue
// still in its table while a pull that has just returned may be sending to it,
// which panics ("send on closed channel") in a goroutine nobody can recover;
// a removed queue's channel is never closed, so that pull's send completes.
// If the rebalance cannot ask the broker for the group's members (the broker
// is down), the queues stay and Shutdown closes them as before.
func (sub *subscription) releaseQueues() {
	rb, ok := sub.consumer.(rebalancer)
	if !ok || sub.alloc.broadcast {
		return
	}
	sub.alloc.releasing.Store(true)
	rb.RebalanceIfNotPaused()
}
