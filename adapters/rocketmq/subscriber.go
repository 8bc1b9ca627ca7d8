package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	rmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Subscriber is a Watermill subscriber over rocketmq-client-go push
// consumers, one consumer per Subscribe call.
//
// Delivery guarantees: at-least-once. A message's offset is committed only
// after its Ack; the consume call the client makes returns only once the
// message is acked or nacked, or the subscription ends. A nack is redelivered
// in process (default: the same UUID and metadata, at once or after
// NackResendDelay, until acked), or handed to the broker's retry with
// BrokerRetry (redelivered after the delay level with ReconsumeTimes + 1, then
// moved to %DLQ%<group>). A message neither acked nor nacked when the
// subscription ends is not committed and is redelivered to the group later;
// so are messages whose ack arrives after CloseTimeout, and the messages
// already acked of a consume call that had not finished (the client hands
// ConsumeBatch messages to a call and commits them when it returns) and
// after it in the same queue (the client commits a queue's offset up to its
// oldest unfinished message).
// Duplicates also happen after rebalances and broker restarts; the UUID stays
// the same, so handlers can deduplicate. Broadcasting subscriptions drop
// nacked messages. Order is not guaranteed: queues are consumed concurrently, and messages of
// one queue by up to ConsumeGoroutines goroutines.
//
// The messages of a consume call go out one after another on the client's
// goroutine while handlers are quick: one goroutine per call, not per
// message. Once a handler takes longer than SplitAfter over one of them, the
// rest of the call goes out at once, each on a goroutine of its own. Either
// way at most ConsumeGoroutines messages are out at a time.
//
// Broker retry caveat: client v2.1.2 ignores the broker's answer to the
// send-back that carries a nacked message to %RETRY%<group>; if the broker
// refuses it (an error answer, not a network failure), the offset still
// advances and the message is lost. Network failures are retried by the
// client.
//
// The output channel is buffered (ConsumeGoroutines messages), so that a
// message changes goroutines with one wake-up rather than two; each buffered
// message still holds its consume call until acked or nacked.
//
// Close (and the end of a Subscribe context for its subscription) stops
// handing out messages, takes back the messages nobody has read from the
// channel yet (left uncommitted: the group gets them again), cancels the
// contexts of messages in handlers, waits up to CloseTimeout for their acks,
// shuts the consumer down, and closes the output channel. Subscribe and Close are safe for concurrent use.
//
// A delivered message's context carries the values and deadline of the
// Subscribe context and is cancelled when the message is acked or nacked, or
// when the subscription ends.
type Subscriber struct {
	cfg    SubscriberConfig
	logger watermill.LoggerAdapter

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	names   map[string]int
	subs    map[string][]*subscription // running, by topic (WaitReady)
	running sync.WaitGroup
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

func shortID() string { return watermill.NewShortUUID() }

// NewSubscriber validates cfg and returns a Subscriber. It does not connect:
// each Subscribe call starts its own consumer. A nil logger discards logs.
func NewSubscriber(cfg SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	routeDefault(logger)
	return &Subscriber{
		cfg:     cfg,
		logger:  logger.With(watermill.LogFields{"component": "rocketmq.Subscriber", "consumer_group": cfg.ConsumerGroup}),
		closing: make(chan struct{}),
		names:   map[string]int{},
		subs:    map[string][]*subscription{},
	}, nil
}

// Subscribe starts a consumer of topic for the group and returns its
// messages. The topic is created first when it has no route (unless
// SkipTopicCreation, in which case Subscribe waits for the route), and so is
// %RETRY%<group> in clustering mode, so a new group's first redelivery is not
// held back by the client's 20 s rebalance. The channel is closed when ctx
// ends or the Subscriber closes.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := ValidateTopic(s.fullName(topic)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, policy.Permanent(ErrClosed)
	}
	s.running.Add(1)
	instance := s.instanceName(topic)
	s.mu.Unlock()

	sub, err := s.start(ctx, topic, instance)
	if err != nil {
		s.running.Done()
		return nil, err
	}
	s.mu.Lock()
	s.subs[topic] = append(s.subs[topic], sub)
	s.mu.Unlock()
	go func() {
		defer s.running.Done()
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		sub.stopAndDrain()
		s.mu.Lock()
		s.subs[topic] = slices.DeleteFunc(s.subs[topic], func(o *subscription) bool { return o == sub })
		if len(s.subs[topic]) == 0 {
			delete(s.subs, topic)
		}
		s.mu.Unlock()
	}()
	return sub.out, nil
}

// SubscribeInitialize creates topic and %RETRY%<group> if they have no route
// (or waits for the route with SkipTopicCreation). Watermill calls it before
// Subscribe where supported.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if err := ValidateTopic(s.fullName(topic)); err != nil {
		return err
	}
	return s.ensureRoutes(context.Background(), topic)
}

// Close ends every subscription (see the type's documentation) and waits for
// them. It is idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.running.Wait()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.running.Wait()
	return nil
}

func (s *Subscriber) fullName(topic string) string {
	if s.cfg.Namespace == "" {
		return topic
	}
	return s.cfg.Namespace + "%" + topic
}

// GroupFor returns the RocketMQ consumer group that consumes topic (without
// namespace): ConsumerGroup itself with SingleTopicGroup, otherwise a group
// derived from ConsumerGroup and topic (see SubscriberConfig.SingleTopicGroup).
func (s *Subscriber) GroupFor(topic string) string {
	if s.cfg.SingleTopicGroup {
		return s.cfg.ConsumerGroup
	}
	g := s.cfg.ConsumerGroup + "_" + topic
	if len("%RETRY%")+len(s.fullName(g)) <= MaxTopicLength {
		return g
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(topic))
	return fmt.Sprintf("%s_%016x", s.cfg.ConsumerGroup, h.Sum64())
}

// instanceName must be called with s.mu held.
func (s *Subscriber) instanceName(topic string) string {
	base := s.cfg.InstanceName + "-" + topic
	n := s.names[base]
	s.names[base] = n + 1
	if n == 0 {
		return base
	}
	return base + "-" + strconv.Itoa(n+1)
}

func (s *Subscriber) start(ctx context.Context, topic, instance string) (*subscription, error) {
	if err := s.ensureRoutes(ctx, topic); err != nil {
		return nil, err
	}
	sub := &subscription{
		s:       s,
		topic:   topic,
		msgBase: uncancelled{ctx},
		// A buffer lets a consume call hand its message over without
		// waiting for the reader, and the reader take messages without
		// waiting for a consume call: one goroutine wake-up per message
		// instead of two. stopAndDrain takes back what is still buffered.
		out:          make(chan *message.Message, s.cfg.ConsumeGoroutines),
		slots:        make(chan struct{}, s.cfg.ConsumeGoroutines),
		reclaimed:    map[*message.Message]struct{}{},
		stop:         make(chan struct{}),
		shutdownDone: make(chan struct{}),
		alloc:        newAllocation(s.fullName(topic), s.cfg.Broadcasting),
	}
	opts := []consumer.Option{
		consumer.WithStrategy(sub.alloc.allocate),
		consumer.WithNameServer(primitive.NamesrvAddr(s.cfg.NameServers)),
		consumer.WithGroupName(s.GroupFor(topic)),
		consumer.WithInstance(instance),
		consumer.WithConsumeGoroutineNums(s.cfg.ConsumeGoroutines),
		consumer.WithConsumeMessageBatchMaxSize(s.cfg.consumeBatch()),
	}
	switch s.cfg.ConsumeFrom {
	case ConsumeFromLastOffset:
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	case ConsumeFromTimestamp:
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp),
			consumer.WithConsumeTimestamp(s.cfg.ConsumeTimestamp.Format("20060102150405")))
	default:
		opts = append(opts, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	}
	if s.cfg.Broadcasting {
		opts = append(opts, consumer.WithConsumerModel(consumer.BroadCasting))
	} else {
		opts = append(opts, consumer.WithConsumerModel(consumer.Clustering),
			consumer.WithMaxReconsumeTimes(s.cfg.clientMaxReconsumeTimes()))
	}
	if s.cfg.Namespace != "" {
		opts = append(opts, consumer.WithNamespace(s.cfg.Namespace))
	}
	if s.cfg.Credentials != (Credentials{}) {
		opts = append(opts, consumer.WithCredentials(primitive.Credentials(s.cfg.Credentials)))
	}
	c, err := rmq.NewPushConsumer(opts...)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: create consumer for topic %q: %w", topic, err)
	}
	selector := consumer.MessageSelector{Type: consumer.TAG, Expression: s.cfg.TagSelector}
	if err := c.Subscribe(topic, selector, sub.consume); err != nil {
		_ = c.Shutdown()
		return nil, fmt.Errorf("rocketmq: subscribe to topic %q: %w", topic, err)
	}
	if err := c.Start(); err != nil {
		_ = c.Shutdown()
		return nil, fmt.Errorf("%w: start consumer for topic %q: %v", ErrBrokerUnavailable, topic, err)
	}
	sub.consumer = c
	if rb, ok := c.(rebalancer); ok {
		// The retry topic first: when a broker comes back, adding its
		// retry queue sends the client's heartbeat, so the broker knows
		// the consumer before the topic's queues are pulled (a pull
		// that comes first is refused and waits 3 s).
		var topics []string
		if !s.cfg.Broadcasting {
			topics = append(topics, "%RETRY%"+s.fullName(s.GroupFor(topic)))
		}
		topics = append(topics, s.fullName(topic))
		wctx, cancel := context.WithCancel(context.Background())
		sub.stopWatch = cancel
		sub.watching.Add(1)
		go func() {
			defer sub.watching.Done()
			sub.watchRoutes(wctx, rb, topics, s.cfg.RoutePollInterval)
		}()
	}
	return sub, nil
}

// ensureRoutes makes sure topic (and, in clustering mode, %RETRY%<group>) has
// a route before the consumer starts: v2.1.2's Start fails for a topic without
// one, and only picks up a retry topic created later at its next rebalance.
func (s *Subscriber) ensureRoutes(ctx context.Context, topic string) error {
	if err := s.ensureRoute(ctx, s.fullName(topic), s.cfg.TopicQueueNums, true); err != nil {
		return err
	}
	if s.cfg.Broadcasting || s.cfg.SkipTopicCreation {
		// Without creation rights the first heartbeat creates the retry topic.
		return nil
	}
	return s.ensureRoute(ctx, "%RETRY%"+s.fullName(s.GroupFor(topic)), 1, false)
}

// ctxEnded returns ctx's error, or context.DeadlineExceeded once its deadline
// has passed: a dial bounded by the deadline can fail a moment before the
// context's own timer marks it done.
func ctxEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func (s *Subscriber) ensureRoute(ctx context.Context, topic string, queues int, wait bool) error {
	logged, created := false, false
	for {
		_, err := topicRoute(ctx, s.cfg.NameServers, topic)
		if err == nil {
			return nil
		}
		if err := ctxEnded(ctx); err != nil {
			return err
		}
		if !errors.Is(err, errNoRoute) {
			return fmt.Errorf("%w: look up the route of %q: %v", ErrBrokerUnavailable, topic, err)
		}
		if !s.cfg.SkipTopicCreation && !created {
			if err := s.createTopic(ctx, topic, queues); err != nil {
				if ctxErr := ctxEnded(ctx); ctxErr != nil {
					return ctxErr
				}
				return err
			}
			// The broker registers a created topic at once; check again
			// before waiting.
			created = true
			continue
		} else if s.cfg.SkipTopicCreation && !wait {
			return nil
		} else if !logged {
			logged = true
			s.logger.Info("Waiting for the topic to get a route", watermill.LogFields{
				"topic": topic, "created_by_subscriber": created})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return policy.Permanent(ErrClosed)
		case <-time.After(s.cfg.RoutePollInterval):
			// Real time on purpose: this waits for an external broker, and a
			// fake Clock that drives redelivery in a test must not freeze
			// Subscribe while a route propagates.
		}
	}
}

func (s *Subscriber) createTopic(ctx context.Context, topic string, queues int) error {
	masters, err := clusterMasters(ctx, s.cfg.NameServers)
	if err != nil {
		return fmt.Errorf("%w: find brokers to create topic %q: %v", ErrBrokerUnavailable, topic, err)
	}
	adm, err := admin.NewAdmin(
		admin.WithResolver(primitive.NewPassthroughResolver(s.cfg.NameServers)),
		admin.WithCredentials(primitive.Credentials(s.cfg.Credentials)),
	)
	if err != nil {
		return fmt.Errorf("%w: create admin client: %v", ErrBrokerUnavailable, err)
	}
	defer adm.Close()
	for _, addr := range masters {
		err := adm.CreateTopic(ctx,
			admin.WithTopicCreate(topic),
			admin.WithBrokerAddrCreate(addr),
			admin.WithReadQueueNums(queues),
			admin.WithWriteQueueNums(queues),
			admin.WithPerm(6),
		)
		if err != nil {
			return fmt.Errorf("%w: create topic %q on %s: %v", ErrBrokerUnavailable, topic, addr, err)
		}
	}
	return nil
}

// subscription is one Subscribe call: one push consumer and its channel.
type subscription struct {
	s     *Subscriber
	topic string
	// msgBase is the Subscribe context without its cancellation (its values
	// and deadline stay): the parent of every message context. A message
	// context is cancelled by its deliver call (on ack, nack, or when the
	// subscription stops, which the end of the Subscribe context also
	// causes), so it need not register with the Subscribe context: that
	// would cost a lock and two map operations per message.
	msgBase  context.Context
	out      chan *message.Message
	slots    chan struct{} // one per message out: ConsumeGoroutines
	consumer rmq.PushConsumer
	alloc    *allocation
	// stopWatch ends the route watcher (subscriber_routes.go); watching
	// is done when it returned.
	stopWatch context.CancelFunc
	watching  sync.WaitGroup

	mu              sync.Mutex
	stopping        bool          // no new consume calls enter
	shutdownStarted bool          // no consume call parks any more
	stop            chan struct{} // closed when stopping
	shutdownDone    chan struct{} // closed after the consumer shut down
	inflight        sync.WaitGroup
	parked          sync.WaitGroup
	lastResult      atomic.Int64                  // Unix nanoseconds of the last result handed to the client
	reclaimed       map[*message.Message]struct{} // taken back from out unread; guarded by mu
}

// uncancelled keeps the values and deadline of a context but not its
// cancellation, so that a context derived from it does not register with it.
type uncancelled struct{ context.Context }

func (uncancelled) Done() <-chan struct{} { return nil }
func (uncancelled) Err() error            { return nil }

// resultSettleTime is how long a draining subscription lets the client record
// the results of acks that arrived during the drain. The client does it on
// the consume goroutine right after the callback returns, which takes
// microseconds on an idle machine; the margin is for a loaded one, where 50 ms
// was seen to lose an ack about once in ten test runs. It is paid only when a
// result was handed over less than this long before Close.
const resultSettleTime = 250 * time.Millisecond

type verdict int

const (
	verdictAck verdict = iota
	verdictBrokerRetry
	verdictAbandon // not acked before the end: leave it uncommitted
	verdictAgain   // nacked: deliver it again after NackResendDelay
)

// consume is the client's callback. It returns only when every message of
// the call was acked, dropped or handed to the broker's retry, or the
// subscription ended.
func (sub *subscription) consume(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	sub.mu.Lock()
	if sub.stopping {
		sub.mu.Unlock()
		return sub.park()
	}
	sub.inflight.Add(1)
	sub.mu.Unlock()

	r := sub.handOut(msgs)
	if r.abandon {
		return sub.abandon()
	}
	result := consumer.ConsumeSuccess
	if r.retry {
		result = consumer.ConsumeRetryLater
		if cc, ok := primitive.GetConcurrentlyCtx(ctx); ok {
			cc.DelayLevelWhenNextConsume = r.delayLevel
		}
	}
	sub.lastResult.Store(time.Now().UnixNano())
	sub.inflight.Done()
	return result, nil
}

// callResult is what the messages of a consume call (or some of them) came
// to.
type callResult struct {
	abandon    bool // the subscription ended first
	retry      bool // some went to the broker's retry
	delayLevel int  // the delay level of the last of those
}

func (r *callResult) add(o callResult) {
	r.abandon = r.abandon || o.abandon
	if o.retry {
		r.retry, r.delayLevel = true, o.delayLevel
	}
}

// handOut hands the messages of a consume call out one after another on the
// client's goroutine, holding one slot of ConsumeGoroutines. A nacked message
// waits for the next round, after the others of the call, so it does not
// hold them up. Once a handler takes longer than SplitAfter over a message,
// the rest of the call is handed out at once, each message on a goroutine of
// its own with a slot of its own (handOutEach): quick handlers get the
// messages of a call without a goroutine per message, slow ones get the
// concurrency.
func (sub *subscription) handOut(msgs []*primitive.MessageExt) callResult {
	if !sub.takeSlot() {
		return callResult{abandon: true}
	}
	var r callResult
	started := time.Now()
	for round, pending := 0, msgs; len(pending) > 0; round++ {
		var again []*primitive.MessageExt
		out := time.Now() // when the message at hand went out
		for i, ext := range pending {
			if (round > 0 || i > 0) && out.Sub(started) > consumeClockSlack {
				restartConsumeClock(ext)
			}
			v, level := sub.deliver(ext)
			switch v {
			case verdictAbandon:
				<-sub.slots
				return callResult{abandon: true}
			case verdictBrokerRetry:
				r.retry, r.delayLevel = true, level
			case verdictAgain:
				again = append(again, ext)
			}
			now := time.Now()
			if i+1 < len(pending) && now.Sub(out) > sub.s.cfg.SplitAfter {
				<-sub.slots
				r.add(sub.handOutEach(pending[i+1:], again))
				return r
			}
			out = now
		}
		if len(again) > 0 {
			// Nothing is out while the nacked ones wait: free the slot.
			<-sub.slots
			if !sub.waitResend() || !sub.takeSlot() {
				return callResult{abandon: true}
			}
		}
		pending = again
	}
	<-sub.slots
	return r
}

// handOutEach hands each message of fresh, and after NackResendDelay each of
// nacked, out on a goroutine of its own, and waits for all of them.
func (sub *subscription) handOutEach(fresh, nacked []*primitive.MessageExt) callResult {
	results := make([]callResult, len(fresh)+len(nacked))
	var wg sync.WaitGroup
	wg.Add(len(results))
	for i, ext := range append(fresh[:len(fresh):len(fresh)], nacked...) {
		go func() {
			defer wg.Done()
			results[i] = sub.handOutOne(ext, i >= len(fresh))
		}()
	}
	wg.Wait()
	var r callResult
	for _, o := range results {
		r.add(o)
	}
	return r
}

// handOutOne delivers ext, within a slot of ConsumeGoroutines, until it is
// acked or goes to the broker's retry; nacked says it was just nacked and
// waits NackResendDelay first.
func (sub *subscription) handOutOne(ext *primitive.MessageExt, nacked bool) callResult {
	for {
		if nacked && !sub.waitResend() {
			return callResult{abandon: true}
		}
		if !sub.takeSlot() {
			return callResult{abandon: true}
		}
		restartConsumeClock(ext)
		v, level := sub.deliver(ext)
		<-sub.slots
		switch v {
		case verdictAbandon:
			return callResult{abandon: true}
		case verdictBrokerRetry:
			return callResult{retry: true, delayLevel: level}
		case verdictAgain:
			nacked = true
		default:
			return callResult{}
		}
	}
}

// takeSlot takes one of the ConsumeGoroutines slots that bound the messages
// out at once; false when the subscription stops first.
func (sub *subscription) takeSlot() bool {
	select {
	case sub.slots <- struct{}{}:
		return true
	default:
	}
	select {
	case sub.slots <- struct{}{}:
		return true
	case <-sub.stop:
		return false
	}
}

// abandon ends a consume call whose subscription stopped before all its
// messages were acked. The consumer is shut down before it returns: the client
// discards the result, so the offsets stay and the group gets the messages
// again.
func (sub *subscription) abandon() (consumer.ConsumeResult, error) {
	sub.mu.Lock()
	if !sub.shutdownStarted {
		sub.parked.Add(1)
		sub.mu.Unlock()
		sub.inflight.Done()
		<-sub.shutdownDone
		sub.parked.Done()
	} else {
		sub.mu.Unlock()
		sub.inflight.Done()
	}
	return consumer.ConsumeRetryLater, nil
}

// consumeClockSlack is how late a message of a consume call may be handed out
// before restartConsumeClock corrects its start time: a second against the
// client's ConsumeTimeout of 15 minutes, and a call whose messages are handled
// quickly pays nothing for it.
const consumeClockSlack = time.Second

// restartConsumeClock sets the time the client measures ConsumeTimeout from
// (it sends a message back to the broker once that long has passed) to now,
// for a message handed out after others of its consume call, or again after
// a nack: the client sets it once, when the call starts.
func restartConsumeClock(ext *primitive.MessageExt) {
	ext.WithProperty(primitive.PropertyConsumeStartTime, strconv.FormatInt(time.Now().UnixMilli(), 10))
}

// waitResend waits NackResendDelay before nacked messages are handed out
// again; false when the subscription stops first.
func (sub *subscription) waitResend() bool {
	select {
	case <-sub.stop:
		return false
	default:
	}
	d := sub.s.cfg.NackResendDelay
	if d <= 0 {
		return true
	}
	select {
	case <-sub.s.cfg.Clock.After(d):
		return true
	case <-sub.stop:
		return false
	}
}

// park holds a consume call that arrived after the subscription started
// stopping until the consumer is shut down, so its result is discarded.
func (sub *subscription) park() (consumer.ConsumeResult, error) {
	sub.mu.Lock()
	if sub.shutdownStarted {
		sub.mu.Unlock()
		return consumer.ConsumeRetryLater, nil
	}
	sub.parked.Add(1)
	sub.mu.Unlock()
	<-sub.shutdownDone
	sub.parked.Done()
	return consumer.ConsumeRetryLater, nil
}

// deliver hands ext to the output channel once and waits until it is acked
// (verdictAck), nacked (verdictAgain, or what nacked decides), or the
// subscription ends. It runs on a goroutine the client starts for each
// consume call (or, once the call is spread, one of handOutEach's), whose stack grows (a copy) once the calls under it need more
// than its initial size; the rare paths are therefore in functions of their
// own, keeping the frames of the common path small.
func (sub *subscription) deliver(ext *primitive.MessageExt) (verdict, int) {
	msg, err := sub.s.cfg.Marshaler.Unmarshal(ext)
	if err != nil {
		return sub.undecodable(ext, err)
	}
	sub.adjust(msg)
	msgCtx, cancel := context.WithCancel(sub.msgBase)
	msg.SetContext(msgCtx)

	select {
	case sub.out <- msg: // room in the buffer: no need to watch stop
	default:
		select {
		case sub.out <- msg:
		case <-sub.stop:
			cancel()
			return verdictAbandon, 0
		}
	}

	select {
	case <-msg.Acked():
		cancel()
		return verdictAck, 0
	case <-msg.Nacked():
		cancel()
	case <-sub.stop:
		cancel()
		if v := sub.awaitOnStop(msg); v != verdictBrokerRetry {
			return v, 0
		}
		// Nacked while stopping.
	}
	if sub.wasReclaimed(msg) {
		// Never read: not the handler's nack.
		return verdictAbandon, 0
	}
	return sub.nacked(msg, ext)
}

// undecodable leaves a message the marshaler cannot read to the broker's
// retry and DLQ.
func (sub *subscription) undecodable(ext *primitive.MessageExt, err error) (verdict, int) {
	sub.s.logger.Error("Cannot unmarshal message", err, watermill.LogFields{
		"topic": sub.topic, "msg_id": ext.MsgId})
	return verdictBrokerRetry, sub.s.cfg.retryLevel(0, ext.ReconsumeTimes, nil)
}

// adjust adds what depends on the subscription to a decoded message.
func (sub *subscription) adjust(msg *message.Message) {
	cfg := &sub.s.cfg
	if cfg.Namespace != "" {
		// Report the topic the application subscribed to, as for
		// messages without a namespace.
		if v := msg.Metadata.Get(metadata.RocketMQTopic); strings.HasPrefix(v, cfg.Namespace+"%") {
			msg.Metadata.Set(metadata.RocketMQTopic, v[len(cfg.Namespace)+1:])
		}
	}
	if cfg.Broadcasting {
		msg.Metadata.Set(metadata.Broadcast, "true")
	}
}

// wasReclaimed reports whether stopAndDrain took msg back from the output
// channel before anyone read it (and nacked it to say so).
func (sub *subscription) wasReclaimed(msg *message.Message) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	_, ok := sub.reclaimed[msg]
	return ok
}

// awaitOnStop gives a handler whose message context was just cancelled
// CloseTimeout to finish: verdictAck when it acks, verdictBrokerRetry (to be
// read as "nacked") when it nacks, verdictAbandon when the time runs out.
func (sub *subscription) awaitOnStop(msg *message.Message) verdict {
	cfg := &sub.s.cfg
	select {
	case <-msg.Acked():
		return verdictAck
	case <-msg.Nacked():
		return verdictBrokerRetry
	case <-cfg.Clock.After(cfg.CloseTimeout):
		return verdictAbandon
	}
}

// nacked decides what happens to a nacked message: dropped (broadcasting),
// handed to the broker's retry (by a timer with TimerRetry), or delivered again (verdictAgain) after
// NackResendDelay.
func (sub *subscription) nacked(msg *message.Message, ext *primitive.MessageExt) (verdict, int) {
	cfg := &sub.s.cfg
	switch {
	case cfg.Broadcasting:
		sub.s.logger.Error("Nacked message of a broadcasting subscription dropped", nil, watermill.LogFields{
			"topic": sub.topic, "message_uuid": msg.UUID})
		return verdictAck, 0
	case cfg.BrokerRetry:
		level := cfg.retryLevel(nackDelayLevel(sub.s.logger, msg), ext.ReconsumeTimes, msg.Metadata)
		if cfg.TimerRetry && level >= 0 && sub.retryByTimer(ext, msg) {
			// The timer copy in %RETRY%<group> is the retry: this
			// delivery is done.
			return verdictAck, 0
		}
		return verdictBrokerRetry, level
	}
	return verdictAgain, 0
}

// nackDelayLevel reads the retry delay level a handler chose for a nacked
// message: 1..18 a broker delay level, -1 straight to the DLQ, 0 or absent the
// broker's schedule.
func nackDelayLevel(logger watermill.LoggerAdapter, msg *message.Message) int {
	v := msg.Metadata.Get(metadata.DelayLevel)
	if v == "-1" {
		return -1
	}
	level, err := ParseDelayLevel(v)
	if err != nil {
		logger.Error("Ignoring invalid delay level on nacked message", err, watermill.LogFields{"message_uuid": msg.UUID})
		return 0
	}
	return level
}

// stopAndDrain ends the subscription: see Subscriber's documentation.
func (sub *subscription) stopAndDrain() {
	sub.mu.Lock()
	sub.stopping = true
	close(sub.stop)
	sub.mu.Unlock()

	// Consume calls holding a message finish (ack, nack, or CloseTimeout)
	// while the consumer still runs, so their results are committed.
	// Meanwhile messages nobody has read yet, in the output buffer or
	// handed over after the stop, are taken back: their consume calls
	// leave them uncommitted at once instead of waiting CloseTimeout for an
	// ack that cannot come.
	inflightDone := make(chan struct{})
	go func() {
		sub.inflight.Wait()
		close(inflightDone)
	}()
	for drained := false; !drained; {
		select {
		case m := <-sub.out:
			sub.mu.Lock()
			sub.reclaimed[m] = struct{}{}
			sub.mu.Unlock()
			m.Nack()
		case <-inflightDone:
			drained = true
		}
	}
	if since := time.Since(time.Unix(0, sub.lastResult.Load())); since < resultSettleTime {
		// The client records a consume result (offset update) on its own
		// goroutine after the callback returns, and discards it once Shutdown
		// has marked the queue dropped; it gives no completion signal. A
		// short pause lets results returned just now land. Wall time on
		// purpose: this waits for the client, not for a schedule.
		time.Sleep(resultSettleTime - since)
	}
	if sub.stopWatch != nil {
		sub.stopWatch()
		sub.watching.Wait()
	}
	sub.releaseQueues()
	if err := sub.consumer.Shutdown(); err != nil {
		sub.s.logger.Error("Consumer shutdown failed", err, watermill.LogFields{"topic": sub.topic})
	}
	sub.mu.Lock()
	sub.shutdownStarted = true
	sub.mu.Unlock()
	close(sub.shutdownDone)
	sub.parked.Wait()
	close(sub.out)
}
