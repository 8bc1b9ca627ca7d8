package rocketmq

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// ClientLogLevel is the least severe rocketmq-client-go log line that reaches
// the Watermill logger.
type ClientLogLevel int

// Client log levels, from the quietest. The zero value is ClientLogError.
const (
	// ClientLogError forwards only the client's errors (the default: the
	// client logs several Info lines per queue every few seconds).
	ClientLogError ClientLogLevel = iota
	// ClientLogWarn also forwards warnings.
	ClientLogWarn
	// ClientLogInfo also forwards the client's info lines.
	ClientLogInfo
	// ClientLogDebug forwards everything.
	ClientLogDebug
	// ClientLogOff forwards nothing.
	ClientLogOff
)

// clientLogBridge routes rlog to a Watermill logger. rlog's logger is a
// process-wide variable that the client reads without synchronisation, so it
// is installed once and only the bridge's own fields change afterwards.
type clientLogBridge struct {
	logger atomic.Pointer[watermill.LoggerAdapter]
	level  atomic.Int32
}

var (
	bridge        = &clientLogBridge{}
	bridgeOnce    sync.Once
	bridgeRouted  atomic.Bool
	panicOnce     sync.Once
	panicHandlerF = func(r any) {
		bridge.Error(fmt.Sprintf("rocketmq client goroutine panicked: %v", r), nil)
	}
)

// RouteClientLogs sends rocketmq-client-go's log lines (rlog, a process-wide
// setting) at level and above to logger, with payload-bearing fields removed.
// The first NewPublisher or NewSubscriber does this with its own logger and
// ClientLogError unless RouteClientLogs was called before; later calls replace
// the logger and level for the whole process. A nil logger discards the lines.
func RouteClientLogs(logger watermill.LoggerAdapter, level ClientLogLevel) {
	bridgeRouted.Store(true)
	bridge.set(logger, level)
	installClientHooks()
}

// installClientHooks installs the log bridge and, once, a client panic
// handler. Without the handler an async send timeout panics inside the client
// (v2.1.2 dereferences a nil response) and kills the process: the client only
// recovers panics when primitive.PanicHandler is set. A handler the user set
// is kept.
func installClientHooks() {
	bridgeOnce.Do(func() { rlog.SetLogger(bridge) })
	panicOnce.Do(func() {
		if primitive.PanicHandler == nil {
			primitive.PanicHandler = panicHandlerF
		}
	})
}

// routeDefault is called by the constructors.
func routeDefault(logger watermill.LoggerAdapter) {
	if bridgeRouted.CompareAndSwap(false, true) {
		bridge.set(logger, ClientLogError)
	}
	installClientHooks()
}

func (b *clientLogBridge) set(logger watermill.LoggerAdapter, level ClientLogLevel) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	logger = logger.With(watermill.LogFields{"component": "rocketmq-client"})
	b.logger.Store(&logger)
	b.level.Store(int32(level))
}

func (b *clientLogBridge) enabled(l ClientLogLevel) bool {
	cur := ClientLogLevel(b.level.Load())
	return cur != ClientLogOff && l <= cur
}

func (b *clientLogBridge) target() watermill.LoggerAdapter {
	if p := b.logger.Load(); p != nil {
		return *p
	}
	return watermill.NopLogger{}
}

// Debug implements rlog.Logger.
func (b *clientLogBridge) Debug(msg string, fields map[string]interface{}) {
	if b.enabled(ClientLogDebug) {
		b.target().Debug(msg, cleanFields(fields))
	}
}

// Info implements rlog.Logger.
func (b *clientLogBridge) Info(msg string, fields map[string]interface{}) {
	if b.enabled(ClientLogInfo) {
		b.target().Info(msg, cleanFields(fields))
	}
}

// Warning implements rlog.Logger.
func (b *clientLogBridge) Warning(msg string, fields map[string]interface{}) {
	if b.enabled(ClientLogWarn) {
		f := cleanFields(fields)
		f["client_level"] = "warning"
		b.target().Info(msg, f)
	}
}

// Error implements rlog.Logger.
func (b *clientLogBridge) Error(msg string, fields map[string]interface{}) {
	if b.enabled(ClientLogError) {
		f := cleanFields(fields)
		var err error
		if e, ok := fields[rlog.LogKeyUnderlayError].(error); ok {
			err = e
			delete(f, rlog.LogKeyUnderlayError)
		} else {
			err = errors.New(msg)
		}
		b.target().Error(msg, err, f)
	}
}

// Fatal implements rlog.Logger. The default rlog logger exits the process on
// Fatal; the bridge only logs.
func (b *clientLogBridge) Fatal(msg string, fields map[string]interface{}) {
	b.Error(msg, fields)
}

// Level implements rlog.Logger (rlog.SetLogLevel).
func (b *clientLogBridge) Level(level string) {
	switch strings.ToLower(level) {
	case "debug":
		b.level.Store(int32(ClientLogDebug))
	case "info":
		b.level.Store(int32(ClientLogInfo))
	case "warn", "warning":
		b.level.Store(int32(ClientLogWarn))
	default:
		b.level.Store(int32(ClientLogError))
	}
}

// OutputPath implements rlog.Logger; output goes to the Watermill logger.
func (b *clientLogBridge) OutputPath(string) error { return nil }

// cleanFields copies fields without the ones that carry messages: the client
// logs whole messages (bodies included) on consume failures, and payloads must
// never reach logs.
func cleanFields(fields map[string]interface{}) watermill.LogFields {
	out := make(watermill.LogFields, len(fields))
	for k, v := range fields {
		switch v.(type) {
		case *primitive.Message, primitive.Message, *primitive.MessageExt, []*primitive.MessageExt,
			[]*primitive.Message:
			continue
		}
		if k == rlog.LogKeyMessages || k == "message" || k == "msg" || k == "msgs" {
			continue
		}
		out[k] = v
	}
	return out
}
