package redelivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// DefaultReplayIdleTimeout is ReplayConfig.IdleTimeout's default.
const DefaultReplayIdleTimeout = 5 * time.Second

// ReplayConfig configures Replay.
type ReplayConfig struct {
	// Messages is an open subscription to the dead-letter topic. When nil,
	// Replay subscribes Subscriber to Topic itself (and ends that
	// subscription when it returns; it does not close Subscriber).
	Messages <-chan *message.Message
	// Subscriber and Topic name the dead-letter topic to read when Messages
	// is nil. Use a subscriber whose consumer group reads the whole topic.
	Subscriber message.Subscriber
	Topic      string
	// Publisher publishes each message to its retry topic (or, with
	// ToOriginalTopic, its original topic). Required. Replay does not close it.
	Publisher message.Publisher
	// RetryTopic is where every message is sent back. Default: each message's
	// metadata.RetryTopic, which the middleware writes on dead letters when
	// its scheduler routes ByRetryTopic (InMemory, Durable) and which only
	// the failed handler of the failed consumer group consumes. Set it for
	// dead letters of a scheduler that routes BySubscriber (RocketMQ's
	// NativeScheduler: "%RETRY%" + the RocketMQ group,
	// rocketmq.Subscriber.GroupFor(topic), which only that group reads) or
	// of a version that did not record it.
	// A message with neither fails with ErrMissingRetryTopic.
	RetryTopic string
	// ToOriginalTopic republishes each message to its metadata.OriginalTopic
	// instead, where every consumer group of the topic receives it again,
	// not only the one that failed. Excludes RetryTopic.
	ToOriginalTopic bool
	// KeepReconsumeTimes keeps the reconsume count, first-failure time and last
	// error, so the message resumes its schedule where it stopped (and, with
	// the count at its maximum, is dead-lettered again at the next failure).
	// Default false: the count is reset and the message starts afresh.
	KeepReconsumeTimes bool
	// Rate is the most messages published per second; 0 means no limit.
	Rate float64
	// Limit stops Replay after this many messages were replayed; 0 means no
	// limit.
	Limit int
	// IdleTimeout stops Replay when no message arrived for this long (the
	// dead-letter topic is drained). Default DefaultReplayIdleTimeout;
	// negative means wait until Limit or the context ends.
	IdleTimeout time.Duration
	// Clock drives the rate limit and the idle timeout. Default clock.Real{}.
	Clock clock.Clock
	// Hooks observe the run; each value must implement ReplayedHook. They
	// run on Replay's goroutine: keep them fast.
	Hooks []any
}

// ReplayedHook is called once per dead-lettered message Replay read, on
// Replay's goroutine, after the message was acknowledged (replayed) or
// nacked (r.Err set; Replay then stops).
type ReplayedHook interface {
	OnReplayed(r ReplayResult)
}

// ErrMissingRetryTopic is reported by Replay for a dead-lettered message that
// names no retry topic (metadata.RetryTopic) when ReplayConfig gives none and
// ToOriginalTopic is not set.
var ErrMissingRetryTopic = errors.New("redelivery: dead letter names no retry topic")

// ReplayResult says what Replay did with one dead-lettered message.
type ReplayResult struct {
	MessageUUID string
	// OriginalTopic is the topic the message was consumed from.
	OriginalTopic string
	// Topic is where the message was published (or should have been): its
	// retry topic, or OriginalTopic with ReplayConfig.ToOriginalTopic.
	Topic string
	// Reason is the message's metadata.DeadLetterReason.
	Reason string
	// Err is nil when the message was published and acknowledged; otherwise
	// the message was nacked (it stays in the dead-letter topic) and Replay
	// stopped with this error.
	Err error
}

// ReplayStats sums up a Replay run.
type ReplayStats struct {
	// Replayed counts messages published (to their retry or original topic).
	Replayed int
}

// dlqOnly are the facts that no longer hold once a message is replayed: why
// and where it was dead-lettered, the fallback relay's record of a poisoned
// send, which group and handler failed (the replayed delivery may reach
// another), and the transport facts of the copy read from the dead-letter
// topic (a kept delay level would delay the replayed send).
var dlqOnly = []string{
	metadata.DeadLetterReason, metadata.Attempts, metadata.PanicStack, metadata.RetryTopic,
	metadata.FallbackAttempts, metadata.FallbackFirstError, metadata.FallbackLastError,
	metadata.ConsumerGroup, metadata.Handler,
}

func init() { dlqOnly = append(dlqOnly, metadata.PerDelivery()...) }

// resetOnReplay are removed too unless ReplayConfig.KeepReconsumeTimes.
var resetOnReplay = []string{metadata.ReconsumeTimes, RedeliveryCount, metadata.FirstFailureTime, metadata.LastError}

// Replay moves dead-lettered messages back to the handler that failed them:
// by default to their retry topic (see ReplayConfig.RetryTopic), which only
// the failed consumer group's handler consumes, so other groups of the
// original topic do not see the message again; with ToOriginalTopic to
// metadata.OriginalTopic, where every group does. The message keeps its UUID,
// payload, metadata.OriginalTopic and OriginalUUID; the dead-letter facts are
// removed (see dlqOnly). Replay works one message at a time: it
// publishes a message, then acknowledges it in the dead-letter topic, so each
// message is delivered at least once (exactly once unless the acknowledgement
// is lost). It returns nil when Limit is reached or the topic stayed idle for
// IdleTimeout, the context's error when ctx ends first, and stops at the
// first message it cannot replay (no original topic: ErrMissingOriginalTopic;
// no retry topic: ErrMissingRetryTopic; a publish error), nacking that
// message so it stays in the dead-letter topic.
func Replay(ctx context.Context, cfg ReplayConfig, logger watermill.LoggerAdapter) (ReplayStats, error) {
	var stats ReplayStats
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultReplayIdleTimeout
	}
	var errs []error
	if err := nilcheck.Required(ErrInvalidConfig, "Publisher", cfg.Publisher); err != nil {
		errs = append(errs, err)
	}
	if cfg.Messages == nil && (cfg.Subscriber == nil || cfg.Topic == "") {
		errs = append(errs, fmt.Errorf("%w: Messages: required, or Subscriber and Topic", ErrInvalidConfig))
	}
	if cfg.ToOriginalTopic && cfg.RetryTopic != "" {
		errs = append(errs, fmt.Errorf("%w: RetryTopic: must be empty with ToOriginalTopic (they exclude each other)", ErrInvalidConfig))
	}
	if cfg.Rate < 0 {
		errs = append(errs, fmt.Errorf("%w: Rate: %v: must be >= 0", ErrInvalidConfig, cfg.Rate))
	}
	if cfg.Limit < 0 {
		errs = append(errs, fmt.Errorf("%w: Limit: %d: must be >= 0", ErrInvalidConfig, cfg.Limit))
	}
	errs = append(errs, hooks.Validate(ErrInvalidConfig, cfg.Hooks, hooks.Is[ReplayedHook]))
	replayed := hooks.Of[ReplayedHook](cfg.Hooks)
	if err := errors.Join(errs...); err != nil {
		return stats, err
	}
	msgs := cfg.Messages
	if msgs == nil {
		subCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		var err error
		if msgs, err = cfg.Subscriber.Subscribe(subCtx, cfg.Topic); err != nil {
			return stats, fmt.Errorf("redelivery: replay: subscribing to %q: %w", cfg.Topic, err)
		}
	}
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	var next time.Time
	for cfg.Limit == 0 || stats.Replayed < cfg.Limit {
		var idle <-chan time.Time
		if cfg.IdleTimeout > 0 {
			idle = cfg.Clock.After(cfg.IdleTimeout)
		}
		var msg *message.Message
		select {
		case <-ctx.Done():
			return stats, ctx.Err()
		case <-idle:
			return stats, nil
		case m, ok := <-msgs:
			if !ok {
				return stats, nil
			}
			msg = m
		}
		if interval > 0 {
			if wait := next.Sub(cfg.Clock.Now()); wait > 0 {
				select {
				case <-ctx.Done():
					msg.Nack()
					return stats, ctx.Err()
				case <-cfg.Clock.After(wait):
				}
			}
			next = cfg.Clock.Now().Add(interval)
		}
		res := ReplayResult{MessageUUID: msg.UUID, OriginalTopic: msg.Metadata.Get(metadata.OriginalTopic),
			Reason: msg.Metadata.Get(metadata.DeadLetterReason)}
		res.Topic, res.Err = cfg.Destination(msg)
		if res.Err == nil {
			if err := cfg.Publisher.Publish(res.Topic, replayCopy(msg, cfg.KeepReconsumeTimes)); err != nil {
				res.Err = fmt.Errorf("redelivery: replay: publishing %s to %q: %w", msg.UUID, res.Topic, err)
			}
		}
		if res.Err != nil {
			msg.Nack()
		} else {
			msg.Ack()
			stats.Replayed++
		}
		for _, h := range replayed {
			h.OnReplayed(res)
		}
		if res.Err != nil {
			logger.Error("Replay stopped", res.Err, watermill.LogFields{"message_uuid": msg.UUID})
			return stats, res.Err
		}
	}
	return stats, nil
}

// Destination returns the topic Replay publishes the dead letter msg to under
// cfg: cfg.RetryTopic, else the message's metadata.RetryTopic, or with
// ToOriginalTopic its metadata.OriginalTopic. It returns the error Replay
// stops with when there is none (ErrMissingOriginalTopic,
// ErrMissingRetryTopic). Tools use it to show where a replay would go.
func (cfg ReplayConfig) Destination(msg *message.Message) (string, error) {
	orig := msg.Metadata.Get(metadata.OriginalTopic)
	if orig == "" {
		return "", fmt.Errorf("%w: %s", ErrMissingOriginalTopic, msg.UUID)
	}
	topic := cfg.RetryTopic
	switch {
	case cfg.ToOriginalTopic:
		topic = orig
	case topic == "":
		topic = msg.Metadata.Get(metadata.RetryTopic)
	}
	if topic == "" {
		return "", fmt.Errorf("%w: %s (dead-lettered by a scheduler that routes by the subscriber, or by an older version: give the retry topic, or republish to the original topic)", ErrMissingRetryTopic, msg.UUID)
	}
	return topic, nil
}

// replayCopy is the message Replay publishes for a dead-lettered msg: same
// UUID and payload, the metadata without the facts that no longer hold (and,
// unless keep, without the reconsume count, first-failure time and last
// error).
func replayCopy(msg *message.Message, keep bool) *message.Message {
	out := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		out.Metadata[k] = v
	}
	for _, k := range dlqOnly {
		delete(out.Metadata, k)
	}
	if !keep {
		for _, k := range resetOnReplay {
			delete(out.Metadata, k)
		}
	}
	return out
}
