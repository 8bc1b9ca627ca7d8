package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// maxDelayLevel is the highest level a send or a send-back may carry
// (ParseDelayLevel).
const maxDelayLevel = 18

// NativeConfig configures NewNativeScheduler.
type NativeConfig struct {
	// DelayLevels are the brokers' messageDelayLevel durations, level 1
	// first, ascending, at most 18. Default DelayLevels(), the Apache
	// broker's default; set them when your brokers are configured with other
	// levels, so a retry still never comes earlier than its delay.
	DelayLevels []time.Duration
}

// NativeScheduler is the redelivery.Scheduler that leaves the wait to the
// RocketMQ broker (Native mode): it routes BySubscriber. For each failed
// delivery it sets metadata.DelayLevel to the smallest level that waits at
// least the delay (DelayLevelFor) and metadata.RetryDelayMillis to the delay
// itself; the middleware nacks, and a Subscriber with BrokerRetry sends the
// message back to %RETRY%<group>, which redelivers it after the level's
// duration, or, with TimerRetry on a 5.x broker with timer messages, after
// exactly the delay. The redelivery keeps its msg id and UUID and carries
// the broker's count in metadata.ReconsumeTimes. The middleware also sets
// metadata.MaxReconsumeTimes on every nack, from its policy, which the
// subscriber uses instead of its own MaxReconsumeTimes, so the broker never
// moves a message to %DLQ%<group> before the middleware dead-letters it,
// with full metadata, after exactly Policy.MaxAttempts deliveries.
//
// The broker resends the message as first stored: FirstFailureTime and
// LastError are not carried between native redeliveries, and
// Policy.MaxElapsed (measured from FirstFailureTime) does not apply. Nothing
// is lost: the wait lives in the broker. Use it only with a Subscriber that
// has BrokerRetry; another subscriber would redeliver the nacked message at
// once. A NativeScheduler holds nothing and starts no goroutine; like every
// scheduler it serves one Redelivery.
type NativeScheduler struct {
	cfg            NativeConfig
	opened, closed atomic.Bool
}

var _ redelivery.Scheduler = (*NativeScheduler)(nil)

// NewNativeScheduler returns a NativeScheduler for
// redelivery.Config.Scheduler. redelivery.New checks its config.
func NewNativeScheduler(cfg NativeConfig) *NativeScheduler {
	cfg.DelayLevels = append([]time.Duration(nil), cfg.DelayLevels...)
	return &NativeScheduler{cfg: cfg}
}

// Route is redelivery.BySubscriber.
func (s *NativeScheduler) Route() redelivery.Route { return redelivery.BySubscriber }

// Open checks the config.
func (s *NativeScheduler) Open(redelivery.Target) error {
	if len(s.cfg.DelayLevels) == 0 {
		s.cfg.DelayLevels = DelayLevels()
	}
	if err := s.cfg.validate(); err != nil {
		return err
	}
	if !s.opened.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Scheduler: already serves another Redelivery", redelivery.ErrInvalidConfig)
	}
	return nil
}

func (c NativeConfig) validate() error {
	var errs []error
	if len(c.DelayLevels) > maxDelayLevel {
		errs = append(errs, fmt.Errorf("%w: Scheduler: DelayLevels: %d levels, at most %d", redelivery.ErrInvalidConfig, len(c.DelayLevels), maxDelayLevel))
	}
	for i, d := range c.DelayLevels {
		if d <= 0 || (i > 0 && d < c.DelayLevels[i-1]) {
			errs = append(errs, fmt.Errorf("%w: Scheduler: DelayLevels[%d]: %v: must be positive and not below the level before", redelivery.ErrInvalidConfig, i, d))
		}
	}
	return errors.Join(errs...)
}

// Schedule marks the failed delivery for the subscriber (metadata.DelayLevel
// and metadata.RetryDelayMillis) and returns the level's duration: the
// wait on a broker without timer messages, never less than s.Delay up to
// the last level.
func (s *NativeScheduler) Schedule(_ context.Context, sc redelivery.Scheduled) (time.Duration, error) {
	if !s.opened.Load() || s.closed.Load() {
		return 0, redelivery.ErrClosed
	}
	level := levelFor(s.cfg.DelayLevels, sc.Delay)
	md := sc.Message.Metadata
	md.Set(metadata.DelayLevel, strconv.Itoa(level))
	// The exact delay, for a subscriber with TimerRetry on a 5.x broker.
	md.Set(metadata.RetryDelayMillis, strconv.FormatInt(max(sc.Delay.Milliseconds(), 1), 10))
	return s.cfg.DelayLevels[level-1], nil
}

// Close ends Schedule; the waiting messages are in the broker.
func (s *NativeScheduler) Close() error {
	s.closed.Store(true)
	return nil
}
