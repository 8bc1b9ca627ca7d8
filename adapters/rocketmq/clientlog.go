package rocketmq

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	repeat repeatLimiter
}

// DefaultClientLogInterval is how often a repeated client log line is
// forwarded by default (SetClientLogInterval).
const DefaultClientLogInterval = 10 * time.Second

// SetClientLogInterval sets how often client log lines that repeat (same
// level, same message) are forwarded: the first at once, then, while it keeps
// coming, one line per interval with the field "repeated" counting the lines
// it stands for (fields of the last one). The client repeats some errors
// many times a second while a name server or broker is down ("connect to
// namesrv failed", "get consumer list of group from broker error"). Zero or
// less forwards every line. Default DefaultClientLogInterval. A process-wide
// setting, like RouteClientLogs.
func SetClientLogInterval(d time.Duration) {
	bridge.repeat.setInterval(d)
}

// repeatLimiter lets the first line of a kind through and folds the repeats
// of an interval into one line at its end.
type repeatLimiter struct {
	interval atomic.Int64 // time.Duration; 0 = every line

	mu    sync.Mutex
	kinds map[repeatKey]*repeatState
	gen   uint64 // bumped by reset: timers of an older generation do nothing
}

type repeatKey struct {
	level ClientLogLevel
	msg   string
}

type repeatState struct {
	repeats int // lines held back in this interval
	last    map[string]interface{}
}

// maxRepeatKinds bounds the kinds tracked at once; further kinds are
// forwarded unfolded.
const maxRepeatKinds = 1024

func init() { bridge.repeat.interval.Store(int64(DefaultClientLogInterval)) }

func (r *repeatLimiter) setInterval(d time.Duration) {
	r.interval.Store(int64(max(d, 0)))
	r.reset()
}

// reset forgets every kind (a new logger starts afresh).
func (r *repeatLimiter) reset() {
	r.mu.Lock()
	r.kinds = nil
	r.gen++
	r.mu.Unlock()
}

// allow reports whether a line goes out now. When it does not, it was
// counted, and emit gets it at the end of the interval with the count.
func (r *repeatLimiter) allow(level ClientLogLevel, msg string, fields map[string]interface{},
	emit func(level ClientLogLevel, msg string, fields map[string]interface{})) bool {
	d := time.Duration(r.interval.Load())
	if d <= 0 {
		return true
	}
	k := repeatKey{level, msg}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.kinds[k]; st != nil {
		st.repeats++
		st.last = fields
		return false
	}
	if len(r.kinds) >= maxRepeatKinds {
		return true
	}
	if r.kinds == nil {
		r.kinds = map[repeatKey]*repeatState{}
	}
	r.kinds[k] = &repeatState{}
	r.schedule(k, d, r.gen, emit)
	return true
}

// schedule ends k's interval after d: the lines held back go out as one,
// and a new interval starts; with none, k is forgotten, so its next line
// goes out at once.
func (r *repeatLimiter) schedule(k repeatKey, d time.Duration, gen uint64,
	emit func(level ClientLogLevel, msg string, fields map[string]interface{})) {
	time.AfterFunc(d, func() {
		r.mu.Lock()
		st := r.kinds[k]
		if st == nil || r.gen != gen {
			r.mu.Unlock()
			return
		}
		if st.repeats == 0 {
			delete(r.kinds, k)
			r.mu.Unlock()
			return
		}
		n, last := st.repeats, st.last
		st.repeats, st.last = 0, nil
		r.schedule(k, d, gen, emit)
		r.mu.Unlock()
		f := make(map[string]interface{}, len(last)+2)
		for key, v := range last {
			f[key] = v
		}
		f["repeated"] = n
		f["repeat_interval"] = d.String()
		emit(k.level, k.msg, f)
	})
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
	b.repeat.reset()
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
	b.log(ClientLogDebug, msg, fields)
}

// Info implements rlog.Logger.
func (b *clientLogBridge) Info(msg string, fields map[string]interface{}) {
	b.log(ClientLogInfo, msg, fields)
}

// Warning implements rlog.Logger.
func (b *clientLogBridge) Warning(msg string, fields map[string]interface{}) {
	b.log(ClientLogWarn, msg, fields)
}

// Error implements rlog.Logger.
func (b *clientLogBridge) Error(msg string, fields map[string]interface{}) {
	b.log(ClientLogError, msg, fields)
}

// log forwards a line at level, unless it repeats one of this interval.
func (b *clientLogBridge) log(level ClientLogLevel, msg string, fields map[string]interface{}) {
	if !b.enabled(level) || !b.repeat.allow(level, msg, fields, b.write) {
		return
	}
	b.write(level, msg, fields)
}

func (b *clientLogBridge) write(level ClientLogLevel, msg string, fields map[string]interface{}) {
	if !b.enabled(level) {
		return
	}
	f := cleanFields(fields)
	switch level {
	case ClientLogDebug:
		b.target().Debug(msg, f)
	case ClientLogInfo:
		b.target().Info(msg, f)
	case ClientLogWarn:
		f["client_level"] = "warning"
		b.target().Info(msg, f)
	default:
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
