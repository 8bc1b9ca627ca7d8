package rocketmq_test

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// deliveryFacts are the keys Unmarshal adds; round-trip comparisons drop them.
var deliveryFacts = []string{
	metadata.ReconsumeTimes, metadata.RocketMQMsgID, metadata.RocketMQOffsetMsgID,
	metadata.RocketMQTopic, metadata.RocketMQQueueID, metadata.RocketMQQueueOffset,
	metadata.RocketMQBornTimestamp, metadata.RocketMQStoreTimestamp,
}

// overTheWire simulates what the broker hands the consumer: the properties go
// through the real wire encoding (name\x01value\x02) and back, and through
// the broker's parse, which drops properties with an empty name or value.
func overTheWire(t testing.TB, out *primitive.Message) *primitive.MessageExt {
	t.Helper()
	ext := &primitive.MessageExt{MsgId: "UNIQ0001", OffsetMsgId: "OFFSET0001", QueueOffset: 7, ReconsumeTimes: 2,
		BornTimestamp: 1000, StoreTimestamp: 2000}
	ext.Topic = out.Topic
	ext.Body = out.Body
	ext.Queue = &primitive.MessageQueue{Topic: out.Topic, BrokerName: "b", QueueId: 3}
	ext.UnmarshalProperties([]byte(brokerReencoded(out.MarshallProperties())))
	return ext
}

// brokerReencoded is what a RocketMQ broker (4.9.4, 5.2.0) stores for a
// single send: MessageDecoder.string2messageProperties keeps an entry only if
// its name and its value are not empty.
func brokerReencoded(props string) string {
	var b strings.Builder
	for _, item := range strings.Split(props, "\x02") {
		k, v, ok := strings.Cut(item, "\x01")
		if ok && k != "" && v != "" {
			b.WriteString(k + "\x01" + v + "\x02")
		}
	}
	return b.String()
}

func roundTrip(t testing.TB, msg *message.Message) *message.Message {
	t.Helper()
	m := rocketmq.DefaultMarshaler{}
	out, err := m.Marshal("topic", msg)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := m.Unmarshal(overTheWire(t, out))
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	return back
}

func userMetadata(md message.Metadata) map[string]string {
	out := map[string]string{}
	for k, v := range md {
		out[k] = v
	}
	for _, k := range deliveryFacts {
		delete(out, k)
	}
	return out
}

func TestDefaultMarshaler_round_trips_uuid_payload_and_unusual_metadata(t *testing.T) {
	msg := message.NewMessage("uuid-1", []byte("payload\x00\x01\xff"))
	msg.Metadata = message.Metadata{
		"DELAY":              "5", // a user key named like a broker property
		"TAGS":               "not-a-tag",
		"UNIQ_KEY":           "mine",
		"empty":              "",
		"spaces and = signs": "a b=c",
		"unicode-ключ":       "значение ✓",
		"":                   "empty key",
		"newline\nkey":       "tab\tvalue",
		"nul":                "\x00",
		metadata.Tags:        "TagA",
		metadata.Keys:        "k1 k2",
		metadata.ShardingKey: "order-7",
	}
	back := roundTrip(t, msg)
	if back.UUID != "uuid-1" {
		t.Errorf("UUID = %q, want uuid-1", back.UUID)
	}
	if string(back.Payload) != string(msg.Payload) {
		t.Errorf("payload = %q, want %q", back.Payload, msg.Payload)
	}
	if diff := cmp.Diff(map[string]string(msg.Metadata), userMetadata(back.Metadata)); diff != "" {
		t.Errorf("metadata mismatch (-want +got):\n%s", diff)
	}
}

func TestDefaultMarshaler_keeps_user_keys_away_from_broker_properties(t *testing.T) {
	msg := message.NewMessage("u", nil)
	msg.Metadata = message.Metadata{"DELAY": "3", "TAGS": "x", "KEYS": "y", "UNIQ_KEY": "z"}
	out, err := rocketmq.DefaultMarshaler{}.Marshal("topic", msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"DELAY", "TAGS", "KEYS", "UNIQ_KEY"} {
		if v := out.GetProperty(name); v != "" {
			t.Errorf("broker property %s = %q, want unset", name, v)
		}
		if v := out.GetProperty(rocketmq.PropertyMetadataPrefix + name); v == "" {
			t.Errorf("user property %s missing", rocketmq.PropertyMetadataPrefix+name)
		}
	}
	if got := out.GetProperty(rocketmq.PropertyUUID); got != "u" {
		t.Errorf("%s = %q, want u", rocketmq.PropertyUUID, got)
	}
}

func TestDefaultMarshaler_maps_send_controls_to_broker_properties(t *testing.T) {
	msg := message.NewMessage("u", nil)
	msg.Metadata = message.Metadata{
		metadata.Tags: "TagA", metadata.Keys: "k1 k2", metadata.DelayLevel: "4", metadata.ShardingKey: "s",
	}
	out, err := rocketmq.DefaultMarshaler{}.Marshal("topic", msg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"TAGS": "TagA", "KEYS": "k1 k2", "DELAY": "4", "SHARDING_KEY": "s", rocketmq.PropertyUUID: "u"}
	if diff := cmp.Diff(want, out.GetProperties()); diff != "" {
		t.Errorf("properties (-want +got):\n%s", diff)
	}
}

func TestDefaultMarshaler_sets_delivery_facts_and_hides_system_properties(t *testing.T) {
	ext := &primitive.MessageExt{MsgId: "MSGID", OffsetMsgId: "OFFID", QueueOffset: 12, ReconsumeTimes: 3,
		BornTimestamp: 111, StoreTimestamp: 222}
	ext.Topic = "orders"
	ext.Queue = &primitive.MessageQueue{Topic: "orders", QueueId: 2}
	ext.WithProperties(map[string]string{
		rocketmq.PropertyUUID: "the-uuid", "UNIQ_KEY": "MSGID", "CLUSTER": "DefaultCluster",
		"REAL_TOPIC": "%RETRY%g", "MIN_OFFSET": "0", "TAGS": "T", "KEYS": "K",
		rocketmq.PropertyMetadataPrefix + "user": "v", "foreign": "ignored for reliamq messages",
	})
	checkUnmarshaled(t, ext, map[string]string{
		"user": "v", metadata.Tags: "T", metadata.Keys: "K",
		metadata.ReconsumeTimes: "3", metadata.RocketMQMsgID: "MSGID", metadata.RocketMQOffsetMsgID: "OFFID",
		metadata.RocketMQTopic: "orders", metadata.RocketMQQueueID: "2", metadata.RocketMQQueueOffset: "12",
		metadata.RocketMQBornTimestamp: "111", metadata.RocketMQStoreTimestamp: "222",
	})
}

// A delivery of a message without user metadata or send controls fills the
// map of its properties in place (the other test's message outgrows it).
func TestDefaultMarshaler_hides_system_properties_of_a_message_without_metadata(t *testing.T) {
	checkUnmarshaled(t, deliveredWithoutMetadata(), map[string]string{
		metadata.ReconsumeTimes: "0", metadata.RocketMQMsgID: "MSGID", metadata.RocketMQOffsetMsgID: "OFFID",
		metadata.RocketMQTopic: "orders", metadata.RocketMQQueueID: "1", metadata.RocketMQQueueOffset: "5",
		metadata.RocketMQBornTimestamp: "111", metadata.RocketMQStoreTimestamp: "222",
	})
}

// checkUnmarshaled unmarshals ext, a delivery of the reliamq message
// "the-uuid", and compares its metadata with want.
func checkUnmarshaled(t *testing.T, ext *primitive.MessageExt, want map[string]string) {
	t.Helper()
	got, err := rocketmq.DefaultMarshaler{}.Unmarshal(ext)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, map[string]string(got.Metadata)); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if got.UUID != "the-uuid" {
		t.Errorf("UUID = %q", got.UUID)
	}
}

// deliveredWithoutMetadata is a reliamq message as a consumer receives it
// from the broker: the client's and the broker's properties beside the UUID.
func deliveredWithoutMetadata() *primitive.MessageExt {
	ext := &primitive.MessageExt{MsgId: "MSGID", OffsetMsgId: "OFFID", QueueOffset: 5,
		BornTimestamp: 111, StoreTimestamp: 222}
	ext.Topic = "orders"
	ext.Body = make([]byte, 256)
	ext.Queue = &primitive.MessageQueue{Topic: "orders", QueueId: 1}
	ext.WithProperties(map[string]string{
		rocketmq.PropertyUUID: "the-uuid", "UNIQ_KEY": "MSGID", "CLUSTER": "DefaultCluster",
		"MIN_OFFSET": "0", "MAX_OFFSET": "6", "CONSUME_START_TIME": "1795264478087",
	})
	return ext
}

func TestDefaultMarshaler_uses_msg_id_and_plain_properties_of_a_plain_producer(t *testing.T) {
	ext := &primitive.MessageExt{MsgId: "7F0000010001", OffsetMsgId: "OFF"}
	ext.Topic = "t"
	ext.WithProperties(map[string]string{"UNIQ_KEY": "7F0000010001", "orderId": "42", "WAIT": "true"})
	got, err := rocketmq.DefaultMarshaler{}.Unmarshal(ext)
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != "7F0000010001" {
		t.Errorf("UUID = %q, want the msg id", got.UUID)
	}
	if got.Metadata.Get("orderId") != "42" {
		t.Errorf("orderId = %q, want 42", got.Metadata.Get("orderId"))
	}
	for _, name := range []string{"UNIQ_KEY", "WAIT"} {
		if _, ok := got.Metadata[name]; ok {
			t.Errorf("system property %s leaked into metadata", name)
		}
	}
}

func TestDefaultMarshaler_rejects_unencodable_metadata(t *testing.T) {
	tests := []struct {
		name string
		md   message.Metadata
		uuid string
	}{
		{name: "name with \\x01", md: message.Metadata{"a\x01b": "v"}},
		{name: "name with \\x02", md: message.Metadata{"a\x02b": "v"}},
		{name: "value with \\x01", md: message.Metadata{"k": "a\x01"}},
		{name: "value with \\x02", md: message.Metadata{"k": "\x02"}},
		{name: "invalid UTF-8 value", md: message.Metadata{"k": "\xff\xfe"}},
		{name: "invalid UTF-8 name", md: message.Metadata{"\xc3": "v"}},
		{name: "uuid with separator", md: nil, uuid: "id\x02x"},
		{name: "tag with separator", md: message.Metadata{metadata.Tags: "a\x01"}},
		{name: "delay level not a number", md: message.Metadata{metadata.DelayLevel: "soon"}},
		{name: "delay level too high", md: message.Metadata{metadata.DelayLevel: "19"}},
		{name: "negative delay level", md: message.Metadata{metadata.DelayLevel: "-1"}},
		{name: "block over the limit", md: message.Metadata{"big": strings.Repeat("x", rocketmq.MaxPropertiesSize)}},
		{name: "block over the limit minus headroom", md: message.Metadata{
			"big": strings.Repeat("x", rocketmq.MaxPropertiesSize-rocketmq.PropertiesHeadroom)}},
		{name: "many keys over the limit", md: manyKeys(4000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uuid := tt.uuid
			if uuid == "" {
				uuid = "u"
			}
			msg := message.NewMessage(uuid, []byte("x"))
			msg.Metadata = tt.md
			_, err := rocketmq.DefaultMarshaler{}.Marshal("topic", msg)
			if !errors.Is(err, rocketmq.ErrInvalidMetadata) {
				t.Fatalf("err = %v, want ErrInvalidMetadata", err)
			}
			if !policy.IsPermanent(err) {
				t.Errorf("err %v is not permanent", err)
			}
			if rocketmq.IsRetryable(err) {
				t.Errorf("err %v is retryable", err)
			}
		})
	}
}

func manyKeys(n int) message.Metadata {
	md := message.Metadata{}
	for i := 0; i < n; i++ {
		md[strings.Repeat("k", 3)+string(rune('a'+i%26))+strings.Repeat("0", i%5)+itoa(i)] = "v"
	}
	return md
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

func TestDefaultMarshaler_accepts_a_large_block_under_the_limit(t *testing.T) {
	msg := message.NewMessage("u", nil)
	value := strings.Repeat("v", rocketmq.MaxPropertiesSize-rocketmq.PropertiesHeadroom-200)
	msg.Metadata = message.Metadata{"big": value}
	back := roundTrip(t, msg)
	if back.Metadata.Get("big") != value {
		t.Errorf("large value did not round-trip (len %d)", len(back.Metadata.Get("big")))
	}
}

func TestParseDelayLevel_accepts_empty_and_levels_up_to_18(t *testing.T) {
	for v, want := range map[string]int{"": 0, "0": 0, "1": 1, "18": 18} {
		got, err := rocketmq.ParseDelayLevel(v)
		if err != nil || got != want {
			t.Errorf("ParseDelayLevel(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
}

func TestValidateTopic(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		ok    bool
	}{
		{name: "empty", topic: ""},
		{name: "space", topic: "a b"},
		{name: "dot", topic: "a.b"},
		{name: "slash", topic: "a/b"},
		{name: "unicode", topic: "tópico"},
		{name: "128 characters", topic: strings.Repeat("a", 128)},
		{name: "127 characters", topic: strings.Repeat("a", 127), ok: true},
		{name: "all allowed characters", topic: "%RETRY%|Az09_-", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rocketmq.ValidateTopic(tt.topic)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateTopic(%q) = %v, want nil", tt.topic, err)
				}
				return
			}
			if !errors.Is(err, rocketmq.ErrInvalidTopic) || !policy.IsPermanent(err) {
				t.Fatalf("ValidateTopic(%q) = %v, want a permanent ErrInvalidTopic", tt.topic, err)
			}
		})
	}
	// Every byte, against the broker's pattern.
	pattern := regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)
	for c := 0; c < 256; c++ {
		topic := "t" + string([]byte{byte(c)})
		if got, want := rocketmq.ValidateTopic(topic) == nil, pattern.MatchString(topic); got != want {
			t.Errorf("byte %#x: valid = %v, the pattern says %v", c, got, want)
		}
	}
}

// encodable is what a property name or value may be: UTF-8 without the
// separator bytes.
func encodable(s string) bool {
	return !strings.ContainsAny(s, "\x01\x02") && utf8.ValidString(s)
}

// Every kind of bad byte, at every position, is found.
func TestCheckProperties_finds_a_bad_byte_anywhere(t *testing.T) {
	for n := 1; n <= 25; n++ {
		for at := 0; at < n; at++ {
			for _, bad := range []string{"\x01", "\x02", "\x80", "\xff", "é", "\u2028", "\x7f", "\x00"} {
				s := strings.Repeat("a", at) + bad + strings.Repeat("b", n-at-1)
				err := rocketmq.CheckProperties(map[string]string{"k": s})
				if want := encodable(s); (err == nil) != want {
					t.Fatalf("value %q: error %v, want accepted: %v", s, err, want)
				}
				err = rocketmq.CheckProperties(map[string]string{s: "v"})
				if want := encodable(s); (err == nil) != want {
					t.Fatalf("name %q: error %v, want accepted: %v", s, err, want)
				}
			}
		}
	}
}

func FuzzCheckProperties(f *testing.F) {
	f.Add("0f8fad5b-d9cb-469f-a165-70867728950e")
	f.Add("abcdefg\x01")
	f.Add("abcdefgh\xe9")
	f.Fuzz(func(t *testing.T, s string) {
		err := rocketmq.CheckProperties(map[string]string{"k": s})
		if len(s) > 16<<10 {
			t.Skip("over the size limit")
		}
		if want := encodable(s); (err == nil) != want {
			t.Fatalf("value %q: error %v, want accepted: %v", s, err, want)
		}
	})
}

// FuzzDefaultMarshaler checks that any metadata either round-trips exactly
// through the wire encoding or is rejected with ErrInvalidMetadata, and that
// Marshal never panics.
func FuzzDefaultMarshaler(f *testing.F) {
	f.Add("uuid", "key", "value", "k2", "", []byte("payload"))
	f.Add("", "DELAY", "3", "TAGS", "x", []byte{})
	f.Add("u\x01", "a\x02", "b", "", "c", []byte{0})
	f.Add("u", "ключ", "\xff", "k", "v", []byte("x"))
	f.Add("u", metadata.DelayMillis, "2500", metadata.DelayLevel, "3", []byte("x"))
	f.Add("u", metadata.DeliverAtMillis, "-1", "k", "", []byte("x"))
	f.Fuzz(func(t *testing.T, uuid, k1, v1, k2, v2 string, payload []byte) {
		msg := message.NewMessage(uuid, payload)
		msg.Metadata = message.Metadata{k1: v1, k2: v2}
		m := rocketmq.DefaultMarshaler{}
		out, err := m.Marshal("topic", msg)
		// What must be refused: separators or invalid UTF-8 anywhere, or a
		// delay level out of range (the inputs stay under the size limit).
		wantErr := !encodable(uuid)
		delays := 0
		for k, v := range msg.Metadata {
			switch k {
			case metadata.DelayLevel:
				level, derr := rocketmq.ParseDelayLevel(v)
				wantErr = wantErr || derr != nil
				if level > 0 {
					delays++
				}
				continue
			case metadata.DelayMillis, metadata.DeliverAtMillis:
				n, perr := strconv.ParseInt(v, 10, 64)
				wantErr = wantErr || (v != "" && (perr != nil || n < 0))
				if n > 0 {
					delays++
				}
				continue
			}
			wantErr = wantErr || !encodable(k) || !encodable(v)
		}
		wantErr = wantErr || delays > 1
		if len(uuid)+len(k1)+len(v1)+len(k2)+len(v2) > 16<<10 {
			t.Skip("input could reach the properties size limit")
		}
		if (err != nil) != wantErr {
			t.Fatalf("Marshal error %v, want an error: %v", err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, rocketmq.ErrInvalidMetadata) {
				t.Fatalf("Marshal error %v does not match ErrInvalidMetadata", err)
			}
			return
		}
		back, err := m.Unmarshal(overTheWire(t, out))
		if err != nil {
			t.Fatal(err)
		}
		wantUUID := uuid
		if uuid == "" {
			wantUUID = "UNIQ0001" // falls back to the msg id
		}
		if back.UUID != wantUUID {
			t.Fatalf("UUID = %q, want %q", back.UUID, wantUUID)
		}
		if string(back.Payload) != string(payload) {
			t.Fatalf("payload changed")
		}
		want := map[string]string(msg.Metadata)
		// Send controls: delays are consumed; empty controls are not sent.
		delete(want, metadata.DelayLevel)
		delete(want, metadata.DelayMillis)
		delete(want, metadata.DeliverAtMillis)
		for _, k := range []string{metadata.Tags, metadata.Keys, metadata.ShardingKey} {
			if v, ok := want[k]; ok && v == "" {
				delete(want, k)
			}
		}
		got := userMetadata(back.Metadata)
		for _, k := range deliveryFacts {
			if v, ok := msg.Metadata[k]; ok {
				got[k] = v // a user key shadowed by a delivery fact
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("metadata mismatch (-want +got):\n%s", diff)
		}
	})
}

// BenchmarkDefaultMarshaler measures the adapter's own per-message encoding
// work, without any network: Marshal on publish, Unmarshal on delivery.
func BenchmarkDefaultMarshaler(b *testing.B) {
	m := rocketmq.DefaultMarshaler{}
	msg := message.NewMessage("0b6c3e0e-6d2f-4d51-9d8e-3c3b5d0f3a11", make([]byte, 256))
	msg.Metadata = message.Metadata{"tenant": "acme", metadata.Tags: "created"}
	out, err := m.Marshal("orders", msg)
	if err != nil {
		b.Fatal(err)
	}
	ext := overTheWire(b, out)
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := m.Marshal("orders", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := m.Unmarshal(ext); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A delivery of a message without metadata, as BenchmarkConsume's.
	plain := deliveredWithoutMetadata()
	b.Run("Unmarshal_without_metadata", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := m.Unmarshal(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Regression: the broker drops properties with empty values, so k="" sent as
// reliamq.k="" arrived without k.
func TestDefaultMarshaler_empty_values_survive_the_brokers_dropping_of_empty_properties(t *testing.T) {
	msg := message.NewMessage("u", []byte("p"))
	msg.Metadata = message.Metadata{"k": "", "": "", "x": "1"}
	out, err := rocketmq.DefaultMarshaler{}.Marshal("topic", msg)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range out.GetProperties() {
		if v == "" {
			t.Errorf("property %q has an empty value: the broker drops it", name)
		}
	}
	back := roundTrip(t, msg)
	if diff := cmp.Diff(map[string]string(msg.Metadata), userMetadata(back.Metadata)); diff != "" {
		t.Errorf("metadata mismatch (-want +got):\n%s", diff)
	}
}

func TestDefaultMarshaler_reads_empty_values_of_the_earlier_encoding(t *testing.T) {
	// Batches sent by earlier versions carry reliamq.k="" until their first
	// redelivery.
	ext := &primitive.MessageExt{MsgId: "M"}
	ext.Queue = &primitive.MessageQueue{Topic: "t"}
	ext.UnmarshalProperties([]byte(rocketmq.PropertyUUID + "\x01u\x02" + rocketmq.PropertyMetadataPrefix + "old\x01\x02" +
		rocketmq.PropertyMetadataPrefix + "both\x01value\x02" + rocketmq.PropertyEmptyMetadataPrefix + "both\x01" +
		rocketmq.PropertyEmptyMetadataValue + "\x02"))
	got, err := rocketmq.DefaultMarshaler{}.Unmarshal(ext)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"old": "", "both": "value"}
	if diff := cmp.Diff(want, userMetadata(got.Metadata)); diff != "" {
		t.Errorf("metadata mismatch (-want +got):\n%s", diff)
	}
}

func TestDefaultMarshaler_user_keys_never_map_to_the_empty_value_marker(t *testing.T) {
	msg := message.NewMessage("u", nil)
	msg.Metadata = message.Metadata{
		"-empty.k": "v", // reliamq.-empty.k, not reliamq-empty.k
		"k":        "",
	}
	back := roundTrip(t, msg)
	if diff := cmp.Diff(map[string]string(msg.Metadata), userMetadata(back.Metadata)); diff != "" {
		t.Errorf("metadata mismatch (-want +got):\n%s", diff)
	}
	if strings.HasPrefix(rocketmq.PropertyEmptyMetadataPrefix, rocketmq.PropertyMetadataPrefix) {
		t.Errorf("%q starts with %q: a user key would map to it", rocketmq.PropertyEmptyMetadataPrefix, rocketmq.PropertyMetadataPrefix)
	}
}

func TestDefaultMarshaler_maps_exact_delays_to_the_timer_properties(t *testing.T) {
	for _, tc := range []struct {
		name, key, value, property string
	}{
		{"delay", metadata.DelayMillis, "2500", rocketmq.PropertyTimerDelayMs},
		{"deliver at", metadata.DeliverAtMillis, "1767225600000", rocketmq.PropertyTimerDeliverMs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := message.NewMessage("u", nil)
			msg.Metadata.Set(tc.key, tc.value)
			out, err := rocketmq.DefaultMarshaler{}.Marshal("topic", msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := out.GetProperty(tc.property); got != tc.value {
				t.Errorf("%s = %q, want %q", tc.property, got, tc.value)
			}
			if got := out.GetProperty(rocketmq.PropertyMetadataPrefix + tc.key); got != "" {
				t.Errorf("the send control also travels as user metadata: %q", got)
			}
		})
	}
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(metadata.DelayMillis, "0")
	if out, err := (rocketmq.DefaultMarshaler{}).Marshal("topic", msg); err != nil || out.GetProperty(rocketmq.PropertyTimerDelayMs) != "" {
		t.Errorf("a zero delay: %v, %q", err, out.GetProperty(rocketmq.PropertyTimerDelayMs))
	}
}

func TestDefaultMarshaler_rejects_bad_or_competing_delays(t *testing.T) {
	for _, md := range []message.Metadata{
		{metadata.DelayMillis: "soon"},
		{metadata.DelayMillis: "-5"},
		{metadata.DeliverAtMillis: "1.5"},
		{metadata.DelayMillis: "100", metadata.DelayLevel: "2"},
		{metadata.DelayMillis: "100", metadata.DeliverAtMillis: "1767225600000"},
	} {
		msg := message.NewMessage("u", nil)
		msg.Metadata = md
		_, err := rocketmq.DefaultMarshaler{}.Marshal("topic", msg)
		if !errors.Is(err, rocketmq.ErrInvalidMetadata) || !policy.IsPermanent(err) {
			t.Errorf("Marshal(%v) = %v, want a permanent ErrInvalidMetadata", md, err)
		}
	}
}

func TestSubscriberConfig_timer_retry_requires_broker_retry(t *testing.T) {
	_, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: []string{"127.0.0.1:1"}, ConsumerGroup: "g", TimerRetry: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "TimerRetry") {
		t.Errorf("NewSubscriber = %v, want an error naming TimerRetry", err)
	}
}
