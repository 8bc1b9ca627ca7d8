package rocketmq_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/reliamq/reliamq/adapters/rocketmq"
)

func TestRouteClientLogs_forwards_a_repeated_line_once_per_interval_with_a_count(t *testing.T) {
	logger := newLockedCapture()
	rocketmq.RouteClientLogs(logger, rocketmq.ClientLogError)
	const interval = 300 * time.Millisecond
	rocketmq.SetClientLogInterval(interval)
	t.Cleanup(func() {
		rocketmq.SetClientLogInterval(rocketmq.DefaultClientLogInterval)
		rocketmq.RouteClientLogs(nil, rocketmq.ClientLogError)
	})

	// What the client logs while the name server is down: the same line
	// many times a second, each with its own cause.
	for i := 0; i < 22; i++ {
		rlog.Error("connect to namesrv failed", map[string]interface{}{
			"namesrv": "127.0.0.1:9876", rlog.LogKeyUnderlayError: errors.New("connection refused")})
	}
	rlog.Error("another failure", nil) // a different line is not held back
	errs := logger.captured(watermill.ErrorLogLevel)
	if len(errs) != 2 || errs[0].Msg != "connect to namesrv failed" || errs[1].Msg != "another failure" {
		t.Fatalf("forwarded at once: %v; want the first line of each kind", msgs(errs))
	}
	if _, ok := errs[0].Fields["repeated"]; ok {
		t.Errorf("the first line carries a repeat count: %v", errs[0].Fields)
	}

	// At the end of the interval one line stands for the 21 held back.
	deadline := time.Now().Add(10 * time.Second)
	for len(logger.captured(watermill.ErrorLogLevel)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	errs = logger.captured(watermill.ErrorLogLevel)
	if len(errs) != 3 {
		t.Fatalf("forwarded %v; want a third line summing up the repeats", msgs(errs))
	}
	sum := errs[2]
	if sum.Msg != "connect to namesrv failed" || sum.Fields["repeated"] != 21 {
		t.Errorf("summary line = %q %v; want the message with repeated=21", sum.Msg, sum.Fields)
	}
	if sum.Fields["namesrv"] != "127.0.0.1:9876" || sum.Err == nil || sum.Err.Error() != "connection refused" {
		t.Errorf("summary line lost the fields of the last line: %v, err %v", sum.Fields, sum.Err)
	}

	// After a quiet interval the line goes out at once again, without a count.
	time.Sleep(3 * interval)
	rlog.Error("connect to namesrv failed", nil)
	errs = logger.captured(watermill.ErrorLogLevel)
	if len(errs) != 4 || errs[3].Msg != "connect to namesrv failed" {
		t.Fatalf("after a quiet interval forwarded %v; want the line at once", msgs(errs))
	}
	if _, ok := errs[3].Fields["repeated"]; ok {
		t.Errorf("a line after a quiet interval carries a repeat count: %v", errs[3].Fields)
	}
}

func TestSetClientLogInterval_zero_forwards_every_line(t *testing.T) {
	logger := newLockedCapture()
	rocketmq.RouteClientLogs(logger, rocketmq.ClientLogWarn)
	rocketmq.SetClientLogInterval(0)
	t.Cleanup(func() {
		rocketmq.SetClientLogInterval(rocketmq.DefaultClientLogInterval)
		rocketmq.RouteClientLogs(nil, rocketmq.ClientLogError)
	})
	for i := 0; i < 5; i++ {
		rlog.Warning("send heart beat to broker error", nil)
	}
	if n := len(logger.captured(watermill.InfoLogLevel)); n != 5 {
		t.Errorf("forwarded %d of 5 warnings with the interval off", n)
	}
}

func msgs(entries []watermill.CapturedMessage) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Msg)
	}
	return out
}

// lockedCapture is a capturing logger whose lines can be read while the
// bridge's timer goroutine writes (watermill.CaptureLoggerAdapter.Captured
// hands out its live map).
type lockedCapture struct {
	mu    *sync.Mutex
	inner watermill.LoggerAdapter
	all   *watermill.CaptureLoggerAdapter
}

func newLockedCapture() *lockedCapture {
	c := watermill.NewCaptureLogger()
	return &lockedCapture{mu: &sync.Mutex{}, inner: c, all: c}
}

func (l *lockedCapture) captured(level watermill.LogLevel) []watermill.CapturedMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]watermill.CapturedMessage(nil), l.all.Captured()[level]...)
}

func (l *lockedCapture) Error(msg string, err error, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inner.Error(msg, err, fields)
}

func (l *lockedCapture) Info(msg string, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inner.Info(msg, fields)
}

func (l *lockedCapture) Debug(msg string, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inner.Debug(msg, fields)
}

func (l *lockedCapture) Trace(msg string, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inner.Trace(msg, fields)
}

func (l *lockedCapture) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return &lockedCapture{mu: l.mu, inner: l.inner.With(fields), all: l.all}
}
