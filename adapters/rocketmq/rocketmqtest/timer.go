package rocketmqtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// Timer message properties of RocketMQ 5.x (MessageConst.java).
const (
	propTimerDeliverMs = "TIMER_DELIVER_MS"
	propTimerDelaySec  = "TIMER_DELAY_SEC"
	propTimerDelayMs   = "TIMER_DELAY_MS"
	propTimerOutMs     = "TIMER_OUT_MS"
	timerTopic         = "rmq_sys_wheel_timer"
)

// timerDue reads the timer properties of a single send the way a 5.x broker
// does (HookUtils.transformTimerMessage): TIMER_DELAY_SEC first, then
// TIMER_DELAY_MS, then TIMER_DELIVER_MS. ok is false for a message that is
// not a timer message (no property, timers disabled, a delay level set: the
// level wins and the timer properties are removed, or a time already
// passed). A value that is not a number, or a delay above TimerMaxDelay,
// is an error answer.
func (b *Broker) timerDue(m *storedMsg, level int) (due time.Time, ok bool, errResp *wire.Command) {
	if b.cfg.DisableTimerMessages {
		return time.Time{}, false, nil
	}
	sec, hasSec := m.props[propTimerDelaySec]
	ms, hasMs := m.props[propTimerDelayMs]
	at, hasAt := m.props[propTimerDeliverMs]
	if !hasSec && !hasMs && !hasAt {
		return time.Time{}, false, nil
	}
	if level > 0 {
		delete(m.props, propTimerDelaySec)
		delete(m.props, propTimerDelayMs)
		delete(m.props, propTimerDeliverMs)
		m.Properties = wire.FormatProperties(m.props)
		return time.Time{}, false, nil
	}
	now := b.cfg.Clock.Now()
	var deliver int64
	var err error
	switch {
	case hasSec:
		var v int64
		v, err = strconv.ParseInt(sec, 10, 64)
		deliver = now.UnixMilli() + v*1000
	case hasMs:
		var v int64
		v, err = strconv.ParseInt(ms, 10, 64)
		deliver = now.UnixMilli() + v
	default:
		deliver, err = strconv.ParseInt(at, 10, 64)
	}
	if err != nil {
		return time.Time{}, false, errorResponse(RespMessageIllegal, "timer message illegal: "+err.Error())
	}
	if deliver <= now.UnixMilli() {
		return time.Time{}, false, nil
	}
	if time.Duration(deliver-now.UnixMilli())*time.Millisecond > b.cfg.TimerMaxDelay {
		return time.Time{}, false, errorResponse(RespMessageIllegal, fmt.Sprintf(
			"timer message illegal, the delay time should not be bigger than the max delay %dms", b.cfg.TimerMaxDelay.Milliseconds()))
	}
	// The timer wheel fires a slot once the slot's whole precision interval
	// has passed: the message is due at its time rounded up to a multiple of
	// the precision.
	p := b.cfg.TimerPrecision.Milliseconds()
	slot := (deliver + p - 1) / p * p
	return time.UnixMilli(slot), true, nil
}

// storeTimer stores m in the timer topic with its destination in
// REAL_TOPIC/REAL_QID and its slot in TIMER_OUT_MS, as the 5.x broker does,
// and schedules its re-put.
func (b *Broker) storeTimer(m *storedMsg, dest *topic, qid int, due time.Time) {
	m.props[propRealTopic] = dest.name
	m.props[propRealQID] = strconv.Itoa(qid)
	m.props[propTimerOutMs] = strconv.FormatInt(due.UnixMilli(), 10)
	m.Properties = wire.FormatProperties(m.props)
	b.append(b.timerTopic(), 0, m)
	b.sched.add(due, m)
}

func (b *Broker) timerTopic() *topic {
	t, _ := b.ensureTopic(timerTopic, 1)
	return t
}

// handleBrokerConfig answers GET_BROKER_CONFIG with the settings a client
// may read: names, delay levels and, unless DisableTimerMessages, the timer
// settings of a 5.x broker.
func (b *Broker) handleBrokerConfig() *wire.Command {
	var sb strings.Builder
	fmt.Fprintf(&sb, "brokerClusterName=%s\nbrokerName=%s\nbrokerId=0\n", b.cfg.ClusterName, b.cfg.BrokerName)
	levels := make([]string, len(b.cfg.DelayLevels))
	for i, d := range b.cfg.DelayLevels {
		levels[i] = formatLevel(time.Duration(float64(d) * b.cfg.DelayScale))
	}
	fmt.Fprintf(&sb, "messageDelayLevel=%s\nmaxMessageSize=%d\nautoCreateTopicEnable=%t\n",
		strings.Join(levels, " "), b.cfg.MaxMessageSize, !b.cfg.DisableAutoCreateTopics)
	if !b.cfg.DisableTimerMessages {
		fmt.Fprintf(&sb, "timerWheelEnable=true\ntimerPrecisionMs=%d\ntimerMaxDelaySec=%d\n",
			b.cfg.TimerPrecision.Milliseconds(), int64(b.cfg.TimerMaxDelay/time.Second))
	}
	resp := okResponse("version", fmt.Sprintf(`{"counter":0,"timestamp":%d}`, b.cfg.Clock.Now().UnixMilli()))
	resp.Body = []byte(sb.String())
	return resp
}

// formatLevel writes a delay level as messageDelayLevel does (1s, 5m, 2h);
// a duration that is not whole seconds is written in milliseconds, which a
// real broker would not accept, so that a scaled level still reads back.
func formatLevel(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d > 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0 && d > 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
