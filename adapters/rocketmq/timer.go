package rocketmq

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/pkg/metadata"
)

// RocketMQ 5.x timer messages: a send with TIMER_DELAY_MS (or
// TIMER_DELIVER_MS) waits in the broker's timer wheel for any delay, not
// only the 18 delay levels. 4.x brokers, and 5.x brokers with
// timerWheelEnable=false, do not know the properties and deliver such a
// message at once; this file tells them apart by the broker's configuration
// (GET_BROKER_CONFIG), sends the timer retries of SubscriberConfig.TimerRetry
// and guards timer sends of the Publisher.

// ErrTimerUnsupported is returned by Publish for a message with
// metadata.DelayMillis or metadata.DeliverAtMillis when a broker of the topic
// has no timer messages (RocketMQ 4.x, or 5.x with timerWheelEnable=false):
// it would deliver the message at once. Nothing is sent. It is permanent
// (policy.IsPermanent): use metadata.DelayLevel on such brokers.
var ErrTimerUnsupported = errors.New("rocketmq: the broker has no timer messages (RocketMQ 5.x with timerWheelEnable)")

const (
	reqGetBrokerConfig = 26
	reqSendMessage     = 10
	// brokerConfigTTL is how long a broker's configuration is trusted: a
	// broker upgraded or reconfigured is seen within it.
	brokerConfigTTL = time.Minute
	// timerProbeTimeout bounds one GET_BROKER_CONFIG or timer retry send.
	timerProbeTimeout = 3 * time.Second
)

// brokerConfig is what a broker's configuration says about delays, and
// whether it creates topics on first send.
type brokerConfig struct {
	timers        bool            // timerWheelEnable=true
	precision     time.Duration   // timerPrecisionMs
	levels        []time.Duration // messageDelayLevel, level 1 first
	createsTopics bool            // autoCreateTopicEnable=true
	at            time.Time
}

var brokerConfigs = struct {
	sync.Mutex
	m map[string]brokerConfig
}{m: map[string]brokerConfig{}}

// readBrokerConfig returns what the configuration of the broker at addr
// says, from a cache of brokerConfigTTL.
func readBrokerConfig(ctx context.Context, addr string) (brokerConfig, error) {
	brokerConfigs.Lock()
	info, ok := brokerConfigs.m[addr]
	brokerConfigs.Unlock()
	if ok && time.Since(info.at) < brokerConfigTTL {
		return info, nil
	}
	resp, body, err := invokeRemoting(ctx, addr, reqGetBrokerConfig, nil, nil)
	if err != nil {
		return brokerConfig{}, err
	}
	if resp.Code != 0 {
		return brokerConfig{}, fmt.Errorf("broker %s answered GET_BROKER_CONFIG with code %d: %s", addr, resp.Code, resp.Remark)
	}
	info = parseBrokerConfig(string(body))
	info.at = time.Now()
	brokerConfigs.Lock()
	brokerConfigs.m[addr] = info
	brokerConfigs.Unlock()
	return info, nil
}

// parseBrokerConfig reads the key=value lines of a GET_BROKER_CONFIG answer.
func parseBrokerConfig(body string) brokerConfig {
	info := brokerConfig{precision: time.Second}
	for _, line := range strings.Split(body, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "timerWheelEnable":
			info.timers = v == "true"
		case "autoCreateTopicEnable":
			info.createsTopics = v == "true"
		case "timerPrecisionMs":
			if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
				info.precision = time.Duration(ms) * time.Millisecond
			}
		case "messageDelayLevel":
			for _, f := range strings.Fields(v) {
				d, err := parseLevel(f)
				if err != nil {
					info.levels = nil
					break
				}
				info.levels = append(info.levels, d)
			}
		}
	}
	return info
}

// parseLevel reads one messageDelayLevel entry: 1s, 5m, 2h, 1d (and ms).
func parseLevel(s string) (time.Duration, error) {
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	for _, u := range []string{"ms", "s", "m", "h", "d"} {
		if n, ok := strings.CutSuffix(s, u); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(v) * units[u], nil
		}
	}
	return 0, fmt.Errorf("delay level %q", s)
}

// timedSend reports whether msg asks for a timer delay.
func timedSend(msg *message.Message) bool {
	if msg == nil {
		return false
	}
	v, w := msg.Metadata[metadata.DelayMillis], msg.Metadata[metadata.DeliverAtMillis]
	return (v != "" && v != "0") || (w != "" && w != "0")
}

// checkTimers refuses, with ErrTimerUnsupported, a Publish of timer messages
// to a topic on a broker without timers. Messages without
// metadata.DelayMillis or metadata.DeliverAtMillis cost two map lookups.
func (p *Publisher) checkTimers(topic string, msgs []*message.Message) error {
	timed := false
	for _, m := range msgs {
		if timedSend(m) {
			timed = true
			break
		}
	}
	if !timed {
		return nil
	}
	ctx := context.Background()
	if msgs[0] != nil {
		ctx = msgs[0].Context()
	}
	full := topic
	if p.cfg.Namespace != "" {
		full = p.cfg.Namespace + "%" + topic
	}
	addrs, err := topicRoute(ctx, p.cfg.NameServers, full)
	if err != nil {
		// A topic without a route yet is created on some broker of the
		// cluster: all of them must have timers.
		if addrs, err = clusterMasters(ctx, p.cfg.NameServers); err != nil {
			return fmt.Errorf("%w: find the brokers of topic %q to check timer support: %v", ErrBrokerUnavailable, topic, err)
		}
	}
	for _, addr := range addrs {
		info, err := readBrokerConfig(ctx, addr)
		if err != nil {
			return fmt.Errorf("%w: check timer support of broker %s: %v", ErrBrokerUnavailable, addr, err)
		}
		if !info.timers {
			return permanent(ErrTimerUnsupported, "broker %s of topic %q", addr, topic)
		}
	}
	return nil
}

// Properties the consumer adds to a delivered message, and those the broker
// sets for a delay or a timer: a timer retry sends the message as stored,
// without them.
var timerRetryDropped = []string{
	primitive.PropertyMinOffset, primitive.PropertyMaxOffset, primitive.PropertyConsumeStartTime,
	primitive.PropertyDelayTimeLevel, primitive.PropertyRealTopic, primitive.PropertyRealQueueId,
	"TIMER_OUT_MS", "TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS", "TIMER_ROLL_TIMES", "TIMER_DELAY_SEC",
	PropertyTimerDelayMs, PropertyTimerDeliverMs, primitive.PropertyTransactionPrepared,
}

// retryByTimer hands a nacked message to the broker's retry through a 5.x
// timer: it sends the stored message, with reconsume times + 1, to
// %RETRY%<group> with TIMER_DELAY_MS, as the broker's own send-back would
// with a delay level (same UNIQ_KEY, so the same msg id, and the same
// RELIAMQ_UUID). It reports false when the message should take the delay
// level path instead: no metadata.RetryDelayMillis, the delay is the duration of
// the chosen level, the message is due for the dead-letter queue, the broker
// has no timers, credentials are configured (the raw send does not sign),
// or the send failed.
func (sub *subscription) retryByTimer(ext *primitive.MessageExt, msg *message.Message) bool {
	cfg := &sub.s.cfg
	delay, err := parseMillis(metadata.RetryDelayMillis, msg.Metadata.Get(metadata.RetryDelayMillis))
	// The caller has already sent a message due for the dead-letter queue
	// down the delay-level path (level -1).
	if err != nil || delay <= 0 || cfg.Credentials != (Credentials{}) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timerProbeTimeout)
	defer cancel()
	retryTopic := "%RETRY%" + sub.s.fullName(sub.s.GroupFor(sub.topic))
	addrs, err := topicRoute(ctx, cfg.NameServers, retryTopic)
	if err != nil || len(addrs) == 0 {
		sub.timerFallback("no route to the retry topic", err)
		return false
	}
	addr := addrs[0]
	if slices.Contains(addrs, ext.StoreHost) {
		addr = ext.StoreHost
	}
	info, err := readBrokerConfig(ctx, addr)
	if err != nil || !info.timers {
		sub.timerFallback("the broker has no timer messages", err)
		return false
	}
	d := time.Duration(delay) * time.Millisecond
	if level := nackDelayLevel(sub.s.logger, msg); level > 0 && level <= len(info.levels) && info.levels[level-1] == d {
		return false // the level waits exactly that long
	}
	props := ext.GetProperties()
	for _, k := range timerRetryDropped {
		delete(props, k)
	}
	if props[primitive.PropertyRetryTopic] == "" {
		topic := ext.Topic
		if ns := cfg.Namespace; ns != "" && !strings.HasPrefix(topic, ns+"%") {
			topic = ns + "%" + topic
		}
		props[primitive.PropertyRetryTopic] = topic
	}
	if props[primitive.PropertyOriginMessageId] == "" {
		props[primitive.PropertyOriginMessageId] = ext.OffsetMsgId
	}
	props[PropertyTimerDelayMs] = strconv.FormatInt(delay, 10)
	var sb strings.Builder
	for k, v := range props {
		sb.WriteString(k)
		sb.WriteByte(nameValueSeparator)
		sb.WriteString(v)
		sb.WriteByte(propertySeparator)
	}
	group := sub.s.fullName(sub.s.GroupFor(sub.topic))
	resp, _, err := invokeRemoting(ctx, addr, reqSendMessage, map[string]string{
		"producerGroup": group,
		"topic":         retryTopic,
		"queueId":       "0",
		// The body is the client's decompressed copy; no transaction.
		"sysFlag":       "0",
		"bornTimestamp": strconv.FormatInt(ext.BornTimestamp, 10),
		"flag":          strconv.Itoa(int(ext.Flag)),
		"properties":    sb.String(),
		// As the broker's send-back: one more consumption counted.
		"reconsumeTimes": strconv.Itoa(int(ext.ReconsumeTimes) + 1),
		// TimerRetry needs BrokerRetry, where the subscriber applies the
		// reconsume limit itself (retryLevel) and the client gives the
		// broker none: the same here.
		"maxReconsumeTimes":     strconv.Itoa(int(cfg.clientMaxReconsumeTimes())),
		"unitMode":              "false",
		"batch":                 "false",
		"defaultTopic":          "TBW102",
		"defaultTopicQueueNums": "4",
	}, ext.Body)
	if err == nil && resp.Code != 0 {
		err = fmt.Errorf("code %d: %s", resp.Code, resp.Remark)
	}
	if err != nil {
		sub.timerFallback("timer retry send failed", err)
		return false
	}
	return true
}

// timerFallback logs why a timer retry took the delay level path.
func (sub *subscription) timerFallback(why string, err error) {
	sub.s.logger.Info("Retry with a delay level instead of a timer: "+why, watermill.LogFields{"topic": sub.topic, "err": err})
}

// invokeRemoting sends one request to addr and returns the response header
// and body.
func invokeRemoting(ctx context.Context, addr string, code int, ext map[string]string, body []byte) (remotingHeader, []byte, error) {
	var resp remotingHeader
	ctx, cancel := context.WithTimeout(ctx, timerProbeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return resp, nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	hdr, err := json.Marshal(remotingHeader{Code: code, Language: "GO", Version: remotingVersion,
		Opaque: opaqueSeq.Add(1), ExtFields: ext})
	if err != nil {
		return resp, nil, err
	}
	frame := make([]byte, 8, 8+len(hdr)+len(body))
	binary.BigEndian.PutUint32(frame[0:], uint32(4+len(hdr)+len(body)))
	binary.BigEndian.PutUint32(frame[4:], uint32(len(hdr)))
	frame = append(append(frame, hdr...), body...)
	if _, err := conn.Write(frame); err != nil {
		return resp, nil, err
	}
	var lenBuf [4]byte
	if _, err := io.ReadFull(conn, lenBuf[:]); err != nil {
		return resp, nil, err
	}
	total := binary.BigEndian.Uint32(lenBuf[:])
	if total < 4 || total > 16<<20 {
		return resp, nil, fmt.Errorf("broker %s: bad frame length %d", addr, total)
	}
	buf := make([]byte, total)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return resp, nil, err
	}
	headerLen := binary.BigEndian.Uint32(buf[:4]) & 0xFFFFFF
	if int(headerLen) > len(buf)-4 {
		return resp, nil, fmt.Errorf("broker %s: bad header length %d", addr, headerLen)
	}
	if err := json.Unmarshal(buf[4:4+headerLen], &resp); err != nil {
		return resp, nil, fmt.Errorf("broker %s: %w", addr, err)
	}
	return resp, buf[4+headerLen:], nil
}
