package rocketmqtest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
)

// The 5.x timer properties: a single send with TIMER_DELAY_MS, TIMER_DELAY_SEC
// or TIMER_DELIVER_MS waits in the timer topic until its time, rounded up to
// the timer precision, then goes to its topic with its reconsume times.
func TestBroker_delivers_timer_messages_at_their_time(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		props map[string]string
		due   time.Duration // after start
	}{
		{"TIMER_DELAY_MS", map[string]string{"TIMER_DELAY_MS": "2500"}, 3 * time.Second},
		{"TIMER_DELAY_MS on a precision boundary", map[string]string{"TIMER_DELAY_MS": "2000"}, 2 * time.Second},
		{"TIMER_DELAY_SEC", map[string]string{"TIMER_DELAY_SEC": "4"}, 4 * time.Second},
		{"TIMER_DELIVER_MS", map[string]string{"TIMER_DELIVER_MS": "1767225601200"}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.NewFake(start)
			b := rocketmqtest.NewTest(t, rocketmqtest.Config{Clock: clk})
			c := dialRaw(t, b.NameServerAddr())
			tc.props["UNIQ_KEY"] = "T1"
			ext := sendExt("%RETRY%tg", 0, tc.props)
			ext["reconsumeTimes"] = "2"
			ext["maxReconsumeTimes"] = "16"
			if r := c.call(codeSend, ext, []byte("timed")); r.Code != 0 {
				t.Fatalf("send: code %d %s", r.Code, r.Remark)
			}
			if n := len(b.Messages("%RETRY%tg")); n != 0 {
				t.Fatalf("timer message delivered at once")
			}
			if n := b.PendingDelayed(); n != 1 {
				t.Fatalf("%d pending delayed, want 1", n)
			}
			clk.Advance(tc.due - time.Millisecond)
			time.Sleep(20 * time.Millisecond)
			if n := len(b.Messages("%RETRY%tg")); n != 0 {
				t.Fatalf("timer message delivered before %v", tc.due)
			}
			clk.Advance(time.Millisecond)
			waitForCond(t, "the timer message", func() bool { return len(b.Messages("%RETRY%tg")) == 1 })
			m := b.Messages("%RETRY%tg")[0]
			if m.ReconsumeTimes != 2 || m.MsgID != "T1" || string(m.Body) != "timed" || m.Properties["REAL_TOPIC"] != "" {
				t.Errorf("delivered %+v", m)
			}
		})
	}
}

func TestBroker_timer_properties_yield_to_a_delay_level_and_to_DisableTimerMessages(t *testing.T) {
	clk := clocktest.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{Clock: clk})
	c := dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "lv", 0, map[string]string{"DELAY": "1", "TIMER_DELAY_MS": "60000"}, "level wins")
	clk.Advance(time.Second) // level 1
	waitForCond(t, "the level-1 message", func() bool { return len(b.Messages("lv")) == 1 })
	if m := b.Messages("lv")[0]; m.Properties["TIMER_DELAY_MS"] != "" {
		t.Errorf("timer property kept next to a delay level: %v", m.Properties)
	}

	off := rocketmqtest.NewTest(t, rocketmqtest.Config{Clock: clk, DisableTimerMessages: true})
	c4 := dialRaw(t, off.NameServerAddr())
	mustSend(t, c4, "now", 0, map[string]string{"TIMER_DELAY_MS": "60000"}, "at once")
	if n := len(off.Messages("now")); n != 1 {
		t.Errorf("a broker without timers holds the message back (%d delivered)", n)
	}
	cfg := c4.call(int32(rocketmqtest.CodeGetBrokerConfig), nil, nil)
	if cfg.Code != 0 || strings.Contains(string(cfg.Body), "timerWheelEnable") {
		t.Errorf("GET_BROKER_CONFIG without timers: code %d, %q", cfg.Code, cfg.Body)
	}
	cfg = c.call(int32(rocketmqtest.CodeGetBrokerConfig), nil, nil)
	if cfg.Code != 0 || !strings.Contains(string(cfg.Body), "timerWheelEnable=true") || !strings.Contains(string(cfg.Body), "timerPrecisionMs=1000") {
		t.Errorf("GET_BROKER_CONFIG with timers: code %d, %q", cfg.Code, cfg.Body)
	}
}

func TestBroker_refuses_bad_timer_properties(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())
	for _, props := range []map[string]string{
		{"TIMER_DELAY_MS": "soon"},
		{"TIMER_DELAY_SEC": "999999999"}, // beyond the 3-day maximum
	} {
		if r := c.call(codeSend, sendExt("bad", 0, props), []byte("x")); r.Code != int32(rocketmqtest.RespMessageIllegal) {
			t.Errorf("send with %v: code %d, want MESSAGE_ILLEGAL", props, r.Code)
		}
	}
	if n := len(b.Messages("bad")); n != 0 {
		t.Errorf("%d refused messages stored", n)
	}
	// The timer topic is the broker's own, as on a 5.x broker.
	if r := c.call(codeSend, sendExt("rmq_sys_wheel_timer", 0, nil), []byte("x")); r.Code != int32(rocketmqtest.RespNoPermission) {
		t.Errorf("send to the timer topic: code %d, want NO_PERMISSION", r.Code)
	}
}
