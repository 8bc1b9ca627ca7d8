package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

const (
	// TopicCommentPublished is where the API publishes its events.
	TopicCommentPublished = "comment_published"
	// ConsumerGroup is the consumer service's group.
	ConsumerGroup = "comment_counter"
	// dlqAuditGroup reads the dead-letter topic, as an operator's tool would.
	dlqAuditGroup = "comment_dlq_audit"
	// consumerHandler names the consumer's handler (dead-letter metadata).
	consumerHandler = "count_comment"
)

// Comment is the body of POST /comments and of the event.
type Comment struct {
	NoteID  int64  `json:"noteId"`
	Content string `json:"content"`
}

// Events receives what happens in each layer, for the story's narration and
// for the counters. The zero value ignores everything.
type Events struct {
	SendRetry     func(retry.Params)
	Stored        func(fallback.StoredParams)
	StoreFailed   func(fallback.StoreFailedParams)
	AsyncResult   func(async.Result)
	RelaySent     func(fallback.SentParams)
	RelayFailed   func(fallback.FailedParams)
	RelayOutage   func(fallback.OutageParams)
	Consumed      func(msg *message.Message, c Comment, err error)
	Scheduled     func(redelivery.ScheduledParams)
	DeadLettered  func(redelivery.DeadLetterParams)
	DLQReceived   func(msg *message.Message)
	ConsumeResult func(c Comment, reconsume int) error
}

// hooks adapts Events to the libraries' hook interfaces.
type hooks struct{ ev *Events }

func (h hooks) OnPublishRetry(p retry.Params) {
	if h.ev.SendRetry != nil {
		h.ev.SendRetry(p)
	}
}

func (h hooks) OnFallbackStored(p fallback.StoredParams) {
	if h.ev.Stored != nil {
		h.ev.Stored(p)
	}
}

func (h hooks) OnFallbackStoreFailed(p fallback.StoreFailedParams) {
	if h.ev.StoreFailed != nil {
		h.ev.StoreFailed(p)
	}
}

func (h hooks) OnAsyncResult(r async.Result) {
	if h.ev.AsyncResult != nil {
		h.ev.AsyncResult(r)
	}
}

func (h hooks) OnRelaySent(p fallback.SentParams) {
	if h.ev.RelaySent != nil {
		h.ev.RelaySent(p)
	}
}

func (h hooks) OnRelayFailed(p fallback.FailedParams) {
	if h.ev.RelayFailed != nil {
		h.ev.RelayFailed(p)
	}
}

func (h hooks) OnRelayOutage(p fallback.OutageParams) {
	if h.ev.RelayOutage != nil {
		h.ev.RelayOutage(p)
	}
}

func (h hooks) OnRedeliveryScheduled(p redelivery.ScheduledParams) {
	if h.ev.Scheduled != nil {
		h.ev.Scheduled(p)
	}
}

func (h hooks) OnDeadLettered(p redelivery.DeadLetterParams) {
	if h.ev.DeadLettered != nil {
		h.ev.DeadLettered(p)
	}
}

// PublishSide is the comment API's publish stack,
// async(fallback(retry(rocketmq))), and the relay that drains the fallback
// table.
type PublishSide struct {
	Async    *async.Publisher
	Fallback *fallback.Publisher
	Relay    *fallback.Relay
	Store    *sqlstore.Store
	broker   *rocketmq.Publisher

	// MetricsHandler serves GET /metrics when set.
	MetricsHandler http.Handler

	relayCancel context.CancelFunc
	relayDone   chan error
}

// PublishConfig configures NewPublishSide.
type PublishConfig struct {
	NameServers []string
	Store       *sqlstore.Store
	// SendPolicy is the per-message retry before the fallback.
	SendPolicy policy.Policy
	// RelayPollInterval is how often the relay looks at the table.
	RelayPollInterval time.Duration
	Events            *Events
	// Metrics, if set, receives every layer's counters and gauges.
	Metrics *metrics.Metrics
	Logger  watermill.LoggerAdapter
}

// NewPublishSide builds the publish stack and starts the relay.
func NewPublishSide(cfg PublishConfig) (*PublishSide, error) {
	h := hooks{ev: cfg.Events}
	retryHooks, fbHooks, relayHooks := []any{h}, []any{h}, []any{h}
	rmq, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: cfg.NameServers}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if m := cfg.Metrics; m != nil {
		// Each layer reports through its hooks: the retry publisher every
		// broker send (attempts, retries, give-ups), the fallback every row
		// written, the relay every resend.
		retryHooks = append(retryHooks, m.RetryHooks())
		fbHooks, relayHooks = append(fbHooks, m.Fallback()), append(relayHooks, m.Relay())
	}
	// The seed's RetryTemplate: attempts with exponential backoff, each one
	// a synchronous send.
	retried, err := retry.NewPublisher(rmq, retry.Config{Policy: cfg.SendPolicy, Hooks: retryHooks}, cfg.Logger)
	if err != nil {
		_ = rmq.Close()
		return nil, err
	}
	// The seed's fallback(): the failed message goes to a table instead of a
	// log line.
	fb, err := fallback.NewPublisher(retried, fallback.Config{Store: cfg.Store, Hooks: fbHooks}, cfg.Logger)
	if err != nil {
		_ = rmq.Close()
		return nil, err
	}
	// What Close could not send in time goes to the same table.
	leftovers, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: cfg.Store})
	if err != nil {
		_ = rmq.Close()
		return nil, err
	}
	// The seed's ThreadPoolTaskExecutor: 10/50/200, 30s keep-alive,
	// CallerRuns, 60s await termination (all async defaults).
	asyncPub, err := async.NewPublisher(fb, async.Config{Leftovers: leftovers, Hooks: []any{h}}, cfg.Logger)
	if err != nil {
		_ = rmq.Close()
		return nil, err
	}
	// The seed's scheduled task that rescans the table. It sends straight to
	// the broker: the relay has its own per-row schedule and notices an outage
	// by itself, so it does not need the per-message retries of the API path.
	// Its sends are counted by its own hooks (relay_sends_total).
	relay, err := fallback.NewRelay(fallback.RelayConfig{
		Store:        cfg.Store,
		Publisher:    rmq,
		PollInterval: cfg.RelayPollInterval,
		Policy: policy.Policy{Backoff: policy.Exponential(cfg.RelayPollInterval, 2, 30*time.Second),
			Jitter: policy.UniformJitter(0.2)},
		Hooks: relayHooks,
	}, cfg.Logger)
	if err != nil {
		_ = asyncPub.Close()
		return nil, err
	}
	if m := cfg.Metrics; m != nil {
		if err := errors.Join(m.WatchAsync(asyncPub), m.WatchFallbackStore(cfg.Store, "")); err != nil {
			_ = asyncPub.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &PublishSide{Async: asyncPub, Fallback: fb, Relay: relay, Store: cfg.Store, broker: rmq,
		relayCancel: cancel, relayDone: make(chan error, 1)}
	go func() { p.relayDone <- relay.Run(ctx) }()
	return p, nil
}

// Close stops the relay first (it shares the broker publisher), then drains
// the async pool: what cannot be sent in time goes to the table, where the
// next start's relay finds it.
func (p *PublishSide) Close() error {
	p.relayCancel()
	errRelay := <-p.relayDone
	return errors.Join(errRelay, p.Async.Close(), p.broker.Close())
}

// PublishComment is the seed's SendMqRetryHelper.asyncSend: it returns as
// soon as the event is queued.
func (p *PublishSide) PublishComment(ctx context.Context, c Comment) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	msg := message.NewMessage(watermill.NewUUID(), body)
	msg.Metadata.Set(metadata.Keys, fmt.Sprint("note-", c.NoteID))
	msg.SetContext(ctx)
	return msg.UUID, p.Async.Publish(TopicCommentPublished, msg)
}

// ServeHTTP serves POST /comments and GET /stats.
func (p *PublishSide) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/comments" && r.Method == http.MethodPost:
		var c Comment
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&c); err != nil || c.Content == "" {
			http.Error(w, `{"error":"body must be {\"noteId\": 1, \"content\": \"...\"}"}`, http.StatusBadRequest)
			return
		}
		id, err := p.PublishComment(r.Context(), c)
		if err != nil {
			// async refused the call (closed, queue full under Reject) or,
			// under CallerRuns, the send and the store both failed: the
			// caller learns it, nothing is dropped silently.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"uuid": id})
	case r.URL.Path == "/metrics" && p.MetricsHandler != nil:
		p.MetricsHandler.ServeHTTP(w, r)
	case r.URL.Path == "/stats" && r.Method == http.MethodGet:
		rs, err := p.Relay.Stats(r.Context())
		out := map[string]any{"async": p.Async.Stats(), "fallback": p.Fallback.Stats(), "relay": rs}
		if err != nil {
			out["relay_error"] = err.Error()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

// ConsumeSide is the consumer service: a router whose handler runs under the
// redelivery middleware (RocketMQ's schedule, native broker retry), and an
// audit handler reading the dead-letter topic.
type ConsumeSide struct {
	Redelivery      *redelivery.Redelivery
	DeadLetterTopic string
	router          *message.Router
	publisher       *rocketmq.Publisher
	runDone         chan error
}

// ConsumeConfig configures NewConsumeSide.
type ConsumeConfig struct {
	NameServers []string
	// Policy is the consumer's retry policy (RocketMQ's schedule).
	Policy policy.Policy
	Events *Events
	// Metrics, if set, receives the redelivery counters.
	Metrics *metrics.Metrics
	Logger  watermill.LoggerAdapter
}

// NewConsumeSide starts the consumer and returns once its router runs.
func NewConsumeSide(ctx context.Context, cfg ConsumeConfig) (*ConsumeSide, error) {
	ev := cfg.Events
	dlqPub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: cfg.NameServers}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ConsumeSide, error) {
		_ = dlqPub.Close()
		return nil, err
	}
	rdHooks := []any{hooks{ev: ev}}
	if cfg.Metrics != nil {
		rdHooks = append(rdHooks, cfg.Metrics.Redelivery())
	}
	// The native scheduler: the wait lives in the broker (%RETRY%<group>,
	// delay levels), the middleware decides the delay and dead-letters with
	// full metadata after the policy's last attempt.
	rd, err := redelivery.New(redelivery.Config{
		ConsumerGroup:       ConsumerGroup,
		Handler:             consumerHandler,
		Policy:              cfg.Policy,
		Scheduler:           rocketmq.NewNativeScheduler(rocketmq.NativeConfig{}),
		DeadLetterPublisher: dlqPub,
		Hooks:               rdHooks,
	}, cfg.Logger)
	if err != nil {
		return fail(err)
	}
	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{
		NameServers:   cfg.NameServers,
		ConsumerGroup: ConsumerGroup,
		BrokerRetry:   true,
		// The broker must not dead-letter before the middleware does.
		MaxReconsumeTimes: redelivery.MaxReconsumeTimes(cfg.Policy),
		CloseTimeout:      5 * time.Second,
	}, cfg.Logger)
	if err != nil {
		return fail(err)
	}
	dlqSub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{
		NameServers: cfg.NameServers, ConsumerGroup: dlqAuditGroup, CloseTimeout: 5 * time.Second,
	}, cfg.Logger)
	if err != nil {
		return fail(err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, cfg.Logger)
	if err != nil {
		return fail(err)
	}
	handler := func(msg *message.Message) error {
		var c Comment
		if err := json.Unmarshal(msg.Payload, &c); err != nil {
			// A body that is not a comment will never become one.
			err = policy.Permanent(fmt.Errorf("decode comment: %w", err))
			if ev.Consumed != nil {
				ev.Consumed(msg, c, err)
			}
			return err
		}
		var err error
		if ev.ConsumeResult != nil {
			reconsume := 0
			_, _ = fmt.Sscan(msg.Metadata.Get(metadata.ReconsumeTimes), &reconsume)
			err = ev.ConsumeResult(c, reconsume)
		}
		if ev.Consumed != nil {
			ev.Consumed(msg, c, err)
		}
		return err
	}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.WatchRedelivery(rd); err != nil {
			return fail(err)
		}
	}
	if _, err := rd.AddConsumerHandler(router, TopicCommentPublished, sub, handler); err != nil {
		return fail(err)
	}
	dlqTopic := rd.Config().DeadLetterTopic
	router.AddConsumerHandler("dlq_audit", dlqTopic, dlqSub, func(msg *message.Message) error {
		if ev.DLQReceived != nil {
			ev.DLQReceived(msg)
		}
		return nil
	})
	c := &ConsumeSide{Redelivery: rd, DeadLetterTopic: dlqTopic, router: router, publisher: dlqPub,
		runDone: make(chan error, 1)}
	go func() { c.runDone <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
		return c, nil
	case err := <-c.runDone:
		_ = rd.Close()
		return fail(fmt.Errorf("consumer router: %w", err))
	case <-ctx.Done():
		_ = router.Close()
		<-c.runDone
		_ = rd.Close()
		return fail(ctx.Err())
	}
}

// Close stops the router (which closes the subscribers), then the middleware
// and the dead-letter publisher.
func (c *ConsumeSide) Close() error {
	errRouter := c.router.Close()
	errRun := <-c.runDone
	return errors.Join(errRouter, errRun, c.Redelivery.Close(), c.publisher.Close())
}
