package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	rmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Publisher is a Watermill publisher over a rocketmq-client-go producer.
//
// Delivery guarantees: with SendSync and SendAsync, Publish returns nil only
// when the broker answered SEND_OK for every message; any other answer, a
// missing result, or no answer within SendTimeout is an error. An error that
// matches ErrBrokerUnavailable may hide a message the broker did store (the
// answer was lost or late), so retrying it is at-least-once: duplicates are
// possible, and every copy carries the same UUID (PropertyUUID). Bad input
// (ErrNilMessage, ErrEmptyUUID, ErrInvalidUUID, ErrInvalidTopic,
// ErrReservedTopic, ErrMessageTooLarge, ErrInvalidMetadata) is detected for
// the whole call before anything is sent, by the rules of pkg/msgcheck that
// every reliamq publisher and store shares, and Check reports it without
// sending. With SendOneWay there
// is no answer: a lost request is not an error (at-most-once).
//
// A Publish of several messages sends them in order (one request per message,
// or per batch with Batch) and, in SendSync mode, stops at the first failure:
// the returned *SendError's Index says which message failed; those before it
// were stored, those from it on were not confirmed. In SendAsync mode all
// requests are sent before waiting, so messages after Index may have been
// stored too. SendError.Accepted lists the confirmed messages in both modes,
// so retries and fallbacks handle only the rest. A topic that does not exist
// on brokers that do not create topics is a permanent ErrTopicNotExist.
// Order between messages is kept only within one queue (see HashShardingKey)
// and only for sequential sends.
//
// Publish is safe for concurrent use. Close waits for the Publish calls in
// progress (each bounded by SendTimeout), then shuts the producer down; Publish
// after Close returns ErrClosed.
type Publisher struct {
	cfg      PublisherConfig
	logger   watermill.LoggerAdapter
	producer rmq.Producer
	// health and selector: the failover (failover.go).
	health   *brokerHealth
	selector *queueSelector

	mu        sync.RWMutex
	closed    bool
	inflight  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ message.Publisher = (*Publisher)(nil)
	_ msgcheck.Checker  = (*Publisher)(nil)
)

// NewPublisher validates cfg, creates the producer and starts it. The producer
// connects lazily, on the first send. A nil logger discards logs.
func NewPublisher(cfg PublisherConfig, logger watermill.LoggerAdapter) (*Publisher, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	routeDefault(logger)

	opts := []producer.Option{
		producer.WithNameServer(primitive.NamesrvAddr(cfg.NameServers)),
		producer.WithGroupName(cfg.GroupName),
		producer.WithInstanceName(cfg.InstanceName),
		producer.WithRetry(cfg.SendRetries),
		producer.WithSendMsgTimeout(cfg.SendTimeout),
	}
	if cfg.Namespace != "" {
		opts = append(opts, producer.WithNamespace(cfg.Namespace))
	}
	if cfg.Credentials != (Credentials{}) {
		opts = append(opts, producer.WithCredentials(primitive.Credentials(cfg.Credentials)))
	}
	health := newBrokerHealth(cfg.NameServers)
	selector := &queueSelector{health: health, hash: cfg.QueueSelection == HashShardingKey}
	opts = append(opts, producer.WithQueueSelector(selector))
	p, err := rmq.NewProducer(opts...)
	if err != nil {
		health.close()
		return nil, fmt.Errorf("rocketmq: create producer: %w", err)
	}
	if err := p.Start(); err != nil {
		_ = p.Shutdown()
		health.close()
		return nil, fmt.Errorf("rocketmq: start producer: %w", err)
	}
	return &Publisher{
		cfg:      cfg,
		logger:   logger.With(watermill.LogFields{"component": "rocketmq.Publisher", "producer_group": cfg.GroupName}),
		producer: p,
		health:   health,
		selector: selector,
	}, nil
}

// Publish sends msgs to topic; see the type's documentation for what is sent
// when an error is returned. The context of the first message bounds the whole
// call; SendTimeout bounds each request.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return policy.Permanent(ErrClosed)
	}
	p.inflight.Add(1)
	p.mu.RUnlock()
	defer p.inflight.Done()

	if len(msgs) == 0 {
		return nil
	}
	out, err := p.prepare(topic, msgs)
	if err != nil {
		return err
	}
	if err := p.checkTimers(topic, msgs); err != nil {
		return err
	}
	ctx := context.Background()
	if msgs[0] != nil {
		ctx = msgs[0].Context()
	}
	sends := p.plan(out)
	switch p.cfg.SendMode {
	case SendAsync:
		return p.sendAsync(ctx, topic, msgs, out, sends)
	case SendOneWay:
		return p.sendOneWay(ctx, topic, msgs, out, sends)
	default:
		return p.sendSync(ctx, topic, msgs, out, sends)
	}
}

// prepare validates and marshals every message before anything is sent.
func (p *Publisher) prepare(topic string, msgs []*message.Message) ([]*primitive.Message, error) {
	return p.marshal(topic, msgs, true)
}

// Check reports, without sending anything, the error Publish would return
// for bad input: a nil message, an empty or invalid UUID, an invalid or
// reserved topic, a payload over MaxMessageSize, metadata that cannot travel.
// It returns nil when Publish would send (which may still fail at the broker).
// A store that keeps messages for this publisher to send later
// (sqlstore.PublisherConfig.Checker) calls it so that it never keeps a
// message this publisher would refuse. It implements msgcheck.Checker.
func (p *Publisher) Check(topic string, msgs ...*message.Message) error {
	_, err := p.marshal(topic, msgs, false)
	return err
}

// marshal validates and marshals msgs; withIDs gives each its message id.
func (p *Publisher) marshal(topic string, msgs []*message.Message, withIDs bool) ([]*primitive.Message, error) {
	full := topic
	if p.cfg.Namespace != "" {
		full = p.cfg.Namespace + "%" + topic
	}
	if err := ValidateTopic(full); err != nil {
		return nil, err
	}
	if err := validatePublishTopic(topic, p.cfg.RetryGroups, isRetryTopicMarshaler(p.cfg.Marshaler)); err != nil {
		return nil, err
	}
	out := make([]*primitive.Message, len(msgs))
	for i, msg := range msgs {
		if msg == nil {
			return nil, policy.Permanent(fmt.Errorf("%w: %w: message %d of %d", ErrNilMessage, msgcheck.ErrNilMessage, i, len(msgs)))
		}
		// The rules every reliamq publisher and store applies (msgcheck), so
		// that a message valid here is valid through the whole stack.
		if err := msgcheck.UUID(msg.UUID); err != nil {
			return nil, policy.Permanent(fmt.Errorf("rocketmq: message %d of %d: %w", i, len(msgs), err))
		}
		if err := msgcheck.Metadata(msg.Metadata); err != nil {
			return nil, policy.Permanent(fmt.Errorf("%w: message %s: %w", ErrInvalidMetadata, msg.UUID, err))
		}
		if len(msg.Payload) > p.cfg.MaxMessageSize {
			return nil, permanent(ErrMessageTooLarge, "message %s has %d bytes, the limit is %d",
				msg.UUID, len(msg.Payload), p.cfg.MaxMessageSize)
		}
		m, err := p.cfg.Marshaler.Marshal(topic, msg)
		if err != nil {
			if !policy.IsPermanent(err) {
				err = policy.Permanent(fmt.Errorf("%w: message %s: %w", ErrInvalidMetadata, msg.UUID, err))
			}
			return nil, err
		}
		if m == nil {
			return nil, permanent(ErrInvalidMetadata, "marshaler returned no message for %s", msg.UUID)
		}
		// Whatever the marshaler, what it built is checked.
		if err := CheckProperties(m.GetProperties()); err != nil {
			return nil, err
		}
		if len(m.Body) > p.cfg.MaxMessageSize {
			return nil, permanent(ErrMessageTooLarge, "message %s has %d bytes after marshaling, the limit is %d",
				msg.UUID, len(m.Body), p.cfg.MaxMessageSize)
		}
		// The message id (msgid.go). DefaultMarshaler never sets one; a
		// marshaler of the user's may, and its id is kept.
		if withIDs && m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex) == "" {
			m.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, messageIDs.next(time.Now()))
		}
		m.Topic = topic
		out[i] = m
	}
	return out, nil
}

// span is one request: out[from:to].
type span struct{ from, to int }

// batchOverhead is the per-message framing of a batch body (total size, magic,
// body CRC, flag, body length, properties length).
const batchOverhead = 4 + 4 + 4 + 4 + 4 + 2

// plan cuts out into requests. Without Batch every message is its own request.
// With Batch, consecutive batchable messages share a request while the batch
// body stays within MaxMessageSize. Delayed messages, and messages with a
// sharding key under HashShardingKey, travel alone: the client builds the
// batch wrapper without properties, so the broker would ignore their delay
// and the selector their key.
func (p *Publisher) plan(out []*primitive.Message) []span {
	spans := make([]span, 0, len(out))
	if !p.cfg.Batch {
		for i := range out {
			spans = append(spans, span{i, i + 1})
		}
		return spans
	}
	start, size := -1, 0
	flush := func(end int) {
		if start >= 0 {
			spans = append(spans, span{start, end})
			start, size = -1, 0
		}
	}
	for i, m := range out {
		if !p.batchable(m) {
			flush(i)
			spans = append(spans, span{i, i + 1})
			continue
		}
		n := batchOverhead + len(m.Body) + propertiesSize(m)
		if start >= 0 && size+n > p.cfg.MaxMessageSize {
			flush(i)
		}
		if start < 0 {
			start = i
		}
		size += n
	}
	flush(len(out))
	return spans
}

func (p *Publisher) batchable(m *primitive.Message) bool {
	if m.GetProperty(primitive.PropertyDelayTimeLevel) != "" || m.GetProperty(PropertyTimerDelayMs) != "" || m.GetProperty(PropertyTimerDeliverMs) != "" {
		return false
	}
	return p.cfg.QueueSelection != HashShardingKey || m.GetShardingKey() == ""
}

func propertiesSize(m *primitive.Message) int {
	n := 0
	for k, v := range m.GetProperties() {
		n += len(k) + len(v) + 2
	}
	return n
}

// request returns the messages of one send, the first carrying tok, the
// request's failover token (failover.go; the client copies it to a batch).
// Every message already has its UNIQ_KEY (prepare), which the client sets
// only on single sends: without it a batched message's MsgId would change on
// every broker redelivery.
func request(out []*primitive.Message, s span, tok *primitive.MessageQueue) []*primitive.Message {
	tok.BrokerName = ""
	out[s.from].Queue = tok
	return out[s.from:s.to]
}

// sent records the outcome of a request on the broker the selector chose
// for it (none when the client sent nothing) for the failover. A request the
// caller's context ended is not the broker's failure.
func (p *Publisher) sent(ctx context.Context, tok *primitive.MessageQueue, ok bool) {
	switch {
	case ok:
		p.health.succeeded(tok.BrokerName)
	case ctx.Err() == nil:
		p.health.failed(tok.BrokerName)
	}
}

func (p *Publisher) sendSync(ctx context.Context, topic string, msgs []*message.Message, out []*primitive.Message, sends []span) error {
	tok := newSendToken()
	for _, s := range sends {
		sendCtx, cancel := context.WithTimeout(ctx, p.cfg.SendTimeout)
		reqs := request(out, s, tok)
		res, err := p.producer.SendSync(sendCtx, reqs...)
		for try := 0; err != nil && brokerAddrPending(err) && p.waitBrokerAddr(sendCtx, try); try++ {
			tok.BrokerName = "" // nothing was sent: not the broker's failure
			res, err = p.producer.SendSync(sendCtx, reqs...)
		}
		p.sent(ctx, tok, err == nil && res != nil && res.Status == primitive.SendOK)
		timedOut := sendCtx.Err() != nil
		cancel()
		if err == nil && res != nil && res.Status == primitive.SendOK {
			continue // the common case: no error value to build
		}
		if err := p.result(ctx, timedOut, p.newSendError(topic, msgs, s), res, err); err != nil {
			return err
		}
	}
	return nil
}

// brokerAddrWaits is how many times a send waits for its broker's address
// (1, 2, 4 ... 64 ms: 127 ms in all) before the error is returned.
const brokerAddrWaits = 7

// brokerAddrPending reports whether err is the v2.1.2 client's
// "topic=<topic> route info not found" (without the "the " of its no-route
// error): the client picked a queue of the topic but knows no address for the
// queue's broker, and sent nothing. A concurrent first lookup of a route makes
// the queues visible to other sends before it stores the broker addresses
// (apache/rocketmq-client-go#598), so the first sends of a new publisher fail
// this way for a moment; a broker whose master is down does too, for longer.
func brokerAddrPending(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "topic=") && strings.HasSuffix(s, " route info not found")
}

// waitBrokerAddr waits before send try+1 for a broker address the client did
// not know yet. It reports false, without waiting, once the waits are spent or
// the context ended.
func (p *Publisher) waitBrokerAddr(ctx context.Context, try int) bool {
	if try >= brokerAddrWaits || ctx.Err() != nil {
		return false
	}
	if try == 0 {
		p.logger.Debug("The client does not know the broker address of the topic's queue yet; sending again", nil)
	}
	t := time.NewTimer(time.Millisecond << try)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// newSendError starts the error of the failed request s; the messages before
// it were confirmed (sync) or written (one-way).
func (p *Publisher) newSendError(topic string, msgs []*message.Message, s span) *SendError {
	return &SendError{Topic: topic, MessageUUID: msgs[s.from].UUID, Index: s.from,
		accepted: uuids(msgs[:s.from]), acceptedIdx: positions(0, s.from)}
}

// positions returns from, from+1 ... to-1, or nil when there are none.
func positions(from, to int) []int {
	if to <= from {
		return nil
	}
	idx := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	return idx
}

func uuids(msgs []*message.Message) []string {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.UUID
	}
	return ids
}

// classify is classifyClientError plus the check that tells a topic that does
// not exist (and will not be created) from a broker that cannot be reached.
func (p *Publisher) classify(ctx context.Context, timedOut bool, se *SendError, err error) error {
	out := classifyClientError(ctx, timedOut, se, err)
	if timedOut || ctx.Err() != nil || !IsRetryable(out) {
		return out
	}
	if se.Code != codeTopicNotExist && !strings.Contains(err.Error(), "route info not found") {
		return out
	}
	if p.topicCreationDisabled(ctx, se.Topic) {
		se.Err = fmt.Errorf("%w: neither the topic nor %s has a route, so brokers do not create topics: %v",
			ErrTopicNotExist, defaultTopic, err)
		return policy.Permanent(se)
	}
	return out
}

// defaultTopic is the topic whose route brokers with autoCreateTopicEnable
// register, and through which a first send creates a topic.
const defaultTopic = "TBW102"

// topicCreationDisabled asks the name servers whether topic and the default
// topic both have no route. Any other answer, or none, is false: the failure
// then stays retryable.
func (p *Publisher) topicCreationDisabled(ctx context.Context, topic string) bool {
	if p.cfg.Namespace != "" {
		topic = p.cfg.Namespace + "%" + topic
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.SendTimeout)
	defer cancel()
	_, err := topicRoute(ctx, p.cfg.NameServers, topic)
	if !noRouteAnywhere(err) {
		return false
	}
	_, err = topicRoute(ctx, p.cfg.NameServers, defaultTopic)
	if !noRouteAnywhere(err) {
		return false
	}
	// With every broker stopped the name servers know no route at all,
	// TBW102's included: that is an outage, not brokers that do not create
	// topics. A broker that has just started can be listed before its routes
	// are (RocketMQ 5.x): what decides is each broker's own
	// autoCreateTopicEnable, and a broker that does not answer leaves the
	// question open (retryable).
	masters := registeredMasters(ctx, p.cfg.NameServers)
	if len(masters) == 0 {
		return false
	}
	for _, addr := range masters {
		info, err := readBrokerConfig(ctx, addr)
		if err != nil || info.createsTopics {
			return false
		}
	}
	return true
}

// registeredMasters returns the master brokers the first answering name
// server lists.
func registeredMasters(ctx context.Context, nameServers []string) []string {
	for _, ns := range nameServers {
		code, body, err := invokeNameServer(ctx, ns, reqGetBrokerClusterInfo, nil)
		if err == nil && code == 0 {
			if addrs := masterAddrs(body); len(addrs) > 0 {
				return addrs
			}
		}
	}
	return nil
}

// noRouteAnywhere reports whether every name server answered that the topic
// has no route (topicRoute joins one error per name server).
func noRouteAnywhere(err error) bool {
	if err == nil {
		return false
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return errors.Is(err, errNoRoute)
	}
	for _, e := range joined.Unwrap() {
		if !errors.Is(e, errNoRoute) {
			return false
		}
	}
	return len(joined.Unwrap()) > 0
}

// result turns the client's answer into nil or an error. Only SEND_OK with a
// result counts as stored: v2.1.2 returns a non-nil result on some errors and
// maps flush/slave failures to a non-OK status without an error.
func (p *Publisher) result(ctx context.Context, timedOut bool, se *SendError, res *primitive.SendResult, err error) error {
	if err != nil {
		return p.classify(ctx, timedOut, se, err)
	}
	if res == nil {
		se.Err = fmt.Errorf("%w: the client reported no send result", ErrBrokerUnavailable)
		return se
	}
	if res.Status != primitive.SendOK {
		se.Err = fmt.Errorf("%w: send status %s", ErrBrokerUnavailable, sendStatus(res.Status))
		return se
	}
	return nil
}

func sendStatus(s primitive.SendStatus) string {
	switch s {
	case primitive.SendFlushDiskTimeout:
		return "FLUSH_DISK_TIMEOUT"
	case primitive.SendFlushSlaveTimeout:
		return "FLUSH_SLAVE_TIMEOUT"
	case primitive.SendSlaveNotAvailable:
		return "SLAVE_NOT_AVAILABLE"
	case primitive.SendUnknownError:
		return "UNKNOWN_ERROR"
	}
	return fmt.Sprintf("status %d", int(s))
}

type asyncResult struct {
	res *primitive.SendResult
	err error
}

func (p *Publisher) sendAsync(ctx context.Context, topic string, msgs []*message.Message, out []*primitive.Message, sends []span) error {
	sendCtx, cancel := context.WithTimeout(ctx, p.cfg.SendTimeout)
	defer cancel()
	// One buffered channel per request: the client may call back after we
	// gave up, or (v2.1.2, timeout path) call back and then panic.
	results := make([]chan asyncResult, len(sends))
	tokens := make([]*primitive.MessageQueue, len(sends))
	var firstErr error
	for i, s := range sends {
		ch := make(chan asyncResult, 2)
		results[i] = ch
		callback := func(_ context.Context, res *primitive.SendResult, err error) {
			select {
			case ch <- asyncResult{res: res, err: err}:
			default:
			}
		}
		tok := newSendToken()
		tokens[i] = tok
		reqs := request(out, s, tok)
		err := p.producer.SendAsync(sendCtx, callback, reqs...)
		for try := 0; err != nil && brokerAddrPending(err) && p.waitBrokerAddr(sendCtx, try); try++ {
			tok.BrokerName = ""
			err = p.producer.SendAsync(sendCtx, callback, reqs...)
		}
		if err != nil {
			ch <- asyncResult{err: err}
		}
	}
	var accepted []string
	var acceptedIdx []int
	for i, s := range sends {
		var r asyncResult
		timedOut := false
		select {
		case r = <-results[i]:
		case <-sendCtx.Done():
			select {
			case r = <-results[i]:
			default:
				timedOut = true
				r.err = errors.New("no answer from the broker")
			}
		}
		ok := r.err == nil && r.res != nil && r.res.Status == primitive.SendOK
		p.sent(ctx, tokens[i], ok)
		if ok {
			accepted = append(accepted, uuids(msgs[s.from:s.to])...)
			acceptedIdx = append(acceptedIdx, positions(s.from, s.to)...)
			continue
		}
		if firstErr == nil {
			// Only the first failure is classified (which may ask the name
			// servers about the topic); the others are only not accepted.
			se := &SendError{Topic: topic, MessageUUID: msgs[s.from].UUID, Index: s.from}
			firstErr = p.result(ctx, timedOut || sendCtx.Err() != nil && r.err != nil, se, r.res, r.err)
		}
	}
	// Requests after the first failure were sent too: report every
	// confirmed one, so a retry resends only what the broker did not take.
	var se *SendError
	if errors.As(firstErr, &se) {
		se.accepted, se.acceptedIdx = accepted, acceptedIdx
	}
	return firstErr
}

func (p *Publisher) sendOneWay(ctx context.Context, topic string, msgs []*message.Message, out []*primitive.Message, sends []span) error {
	tok := newSendToken()
	for _, s := range sends {
		sendCtx, cancel := context.WithTimeout(ctx, p.cfg.SendTimeout)
		reqs := request(out, s, tok)
		err := p.producer.SendOneWay(sendCtx, reqs...)
		for try := 0; err != nil && brokerAddrPending(err) && p.waitBrokerAddr(sendCtx, try); try++ {
			tok.BrokerName = ""
			err = p.producer.SendOneWay(sendCtx, reqs...)
		}
		p.sent(ctx, tok, err == nil)
		timedOut := sendCtx.Err() != nil
		cancel()
		if err != nil {
			return p.classify(ctx, timedOut, p.newSendError(topic, msgs, s), err)
		}
	}
	return nil
}

// Close waits for Publish calls in progress and shuts the producer down. It is
// idempotent and safe for concurrent use.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.inflight.Wait()
		p.closeErr = p.producer.Shutdown()
		p.health.close()
	})
	return p.closeErr
}
