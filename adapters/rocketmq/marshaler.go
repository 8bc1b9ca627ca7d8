package rocketmq

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/pkg/metadata"
)

// Property names the adapter writes on every message it publishes.
const (
	// PropertyUUID carries the Watermill message UUID. It is a property of its
	// own (not UNIQ_KEY) so that it survives batches, which carry no UNIQ_KEY,
	// and broker redeliveries unchanged.
	PropertyUUID = "RELIAMQ_UUID"
	// PropertyMetadataPrefix is prepended to every metadata key that is not a
	// send control, so user keys such as DELAY or TAGS cannot change broker
	// behaviour and broker system properties never turn into user metadata.
	PropertyMetadataPrefix = "reliamq."
	// PropertyEmptyMetadataPrefix is prepended to a metadata key whose value
	// is empty, with PropertyEmptyMetadataValue as the property's value.
	// RocketMQ brokers (4.9.4 and 5.2.0 alike) drop every property whose
	// value is empty when they parse a message's properties: on each single
	// send, and on each copy they make (retry, dead letter, delay and timer
	// re-puts; batches keep them until their first redelivery). The marker
	// survives all of those. It does not start with PropertyMetadataPrefix,
	// so no user key maps to it.
	PropertyEmptyMetadataPrefix = "reliamq-empty."
	// PropertyEmptyMetadataValue is the value of a PropertyEmptyMetadataPrefix
	// property; Unmarshal ignores it.
	PropertyEmptyMetadataValue = "1"
)

// Limits of the properties block.
const (
	// MaxPropertiesSize is the protocol limit of a message's properties block,
	// in bytes (its length travels as a signed 16-bit integer).
	MaxPropertiesSize = 32767
	// PropertiesHeadroom is the part of MaxPropertiesSize the adapter keeps
	// free for properties the client and the broker add on the way (UNIQ_KEY,
	// CLUSTER, and on a broker retry RETRY_TOPIC, REAL_TOPIC, REAL_QID,
	// ORIGIN_MESSAGE_ID, DELAY, MAX_RECONSUME_TIMES). A message that fits at
	// publish time but not after the broker's additions would be refused on
	// its first broker retry, where the client ignores the refusal.
	PropertiesHeadroom = 1024
)

// Separators of the properties wire format (name\x01value\x02...).
const (
	nameValueSeparator = '\x01'
	propertySeparator  = '\x02'
)

// Marshaler converts Watermill messages to RocketMQ messages and back. The
// publisher validates the topic, the payload size and the properties produced
// by any Marshaler before sending, so a custom implementation cannot bypass
// those checks.
type Marshaler interface {
	// Marshal builds the RocketMQ message for msg on topic. It must not keep
	// msg or modify it.
	Marshal(topic string, msg *message.Message) (*primitive.Message, error)
	// Unmarshal builds the Watermill message for a delivered RocketMQ message.
	Unmarshal(ext *primitive.MessageExt) (*message.Message, error)
}

// DefaultMarshaler is the Marshaler used unless the config names another.
//
// Publishing: the UUID goes to PropertyUUID; the send controls metadata.Tags,
// metadata.Keys, metadata.DelayLevel, metadata.ShardingKey,
// metadata.DelayMillis and metadata.DeliverAtMillis go to the broker's TAGS,
// KEYS, DELAY, SHARDING_KEY, TIMER_DELAY_MS and TIMER_DELIVER_MS (at most one
// of the three delays; a 5.x broker honours the two timer properties, see
// ErrTimerUnsupported); every other metadata entry goes
// to PropertyMetadataPrefix+key with its value unchanged, except that an
// entry whose value is empty goes to PropertyEmptyMetadataPrefix+key with the
// value PropertyEmptyMetadataValue: RocketMQ brokers drop properties with
// empty values, and this way empty values survive single and batch sends,
// broker retries, dead letters and delays.
//
// Delivering: the UUID is PropertyUUID, or the RocketMQ MsgId for a message
// from a plain RocketMQ producer; prefixed properties become metadata again
// under their original keys (PropertyEmptyMetadataPrefix+key as key with an
// empty value; an empty PropertyMetadataPrefix+key, as batches written by
// earlier versions carry until their first redelivery, also reads as key
// with an empty value; when both name the same key, the value wins); TAGS, KEYS and SHARDING_KEY become metadata.Tags,
// metadata.Keys and metadata.ShardingKey; the delivery facts
// metadata.ReconsumeTimes, RocketMQMsgID, RocketMQOffsetMsgID, RocketMQTopic,
// RocketMQQueueID, RocketMQQueueOffset, RocketMQBornTimestamp and
// RocketMQStoreTimestamp are set from the broker's record, overriding user
// metadata of the same name. DELAY is not delivered back: on a subscriber in
// broker-retry mode metadata.DelayLevel is the handler's choice of retry delay.
// A message from a plain producer (no PropertyUUID) also gets its
// non-system properties under their own names.
type DefaultMarshaler struct{}

var _ Marshaler = DefaultMarshaler{}

// Marshal implements Marshaler. It returns an error matching
// ErrInvalidMetadata (and policy.IsPermanent) for metadata that cannot be
// encoded.
func (DefaultMarshaler) Marshal(topic string, msg *message.Message) (*primitive.Message, error) {
	props := make(map[string]string, len(msg.Metadata)+1)
	// Set even when empty: its presence marks a message from this adapter.
	props[PropertyUUID] = msg.UUID
	delays := 0 // send controls that delay the message: at most one
	for k, v := range msg.Metadata {
		name, user := "", false
		switch k {
		case metadata.Tags:
			name = primitive.PropertyTags
		case metadata.Keys:
			name = primitive.PropertyKeys
		case metadata.ShardingKey:
			name = primitive.PropertyShardingKey
		case metadata.DelayLevel:
			level, err := ParseDelayLevel(v)
			if err != nil {
				return nil, err
			}
			if level == 0 {
				continue
			}
			name, v = primitive.PropertyDelayTimeLevel, strconv.Itoa(level)
			delays++
		case metadata.DelayMillis, metadata.DeliverAtMillis:
			n, err := parseMillis(k, v)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				continue
			}
			name = PropertyTimerDelayMs
			if k == metadata.DeliverAtMillis {
				name = PropertyTimerDeliverMs
			}
			delays++
		default:
			name, user = PropertyMetadataPrefix+k, true
			if v == "" {
				// The broker drops empty values: send a marker instead.
				name, v = PropertyEmptyMetadataPrefix+k, PropertyEmptyMetadataValue
			}
		}
		if v == "" && !user {
			continue // an empty send control sets nothing
		}
		props[name] = v
	}
	if delays > 1 {
		return nil, permanent(ErrInvalidMetadata, "at most one of %s, %s and %s may be set",
			metadata.DelayLevel, metadata.DelayMillis, metadata.DeliverAtMillis)
	}
	if err := CheckProperties(props); err != nil {
		return nil, err
	}
	out := primitive.NewMessage(topic, msg.Payload)
	out.WithProperties(props) // WithProperty would drop empty values
	return out, nil
}

// Unmarshal implements Marshaler.
func (DefaultMarshaler) Unmarshal(ext *primitive.MessageExt) (*message.Message, error) {
	props := ext.GetProperties()
	uuid, fromReliamq := props[PropertyUUID]
	if !fromReliamq || uuid == "" {
		uuid = ext.MsgId
	}
	md := make(message.Metadata, len(props))
	if !fromReliamq {
		// A plain producer's message: its properties, except RocketMQ's own.
		for k, v := range props {
			if !isSystemProperty(k) && !strings.HasPrefix(k, PropertyMetadataPrefix) && !strings.HasPrefix(k, PropertyEmptyMetadataPrefix) {
				md[k] = v
			}
		}
	}
	// User metadata. Keys whose value is empty first, so that a value for
	// the same key wins.
	for k := range props {
		if key, ok := strings.CutPrefix(k, PropertyEmptyMetadataPrefix); ok {
			md[key] = ""
		}
	}
	for k, v := range props {
		if key, ok := strings.CutPrefix(k, PropertyMetadataPrefix); ok {
			md[key] = v
		}
	}
	if v := props[primitive.PropertyTags]; v != "" {
		md[metadata.Tags] = v
	}
	if v := props[primitive.PropertyKeys]; v != "" {
		md[metadata.Keys] = v
	}
	if v := props[primitive.PropertyShardingKey]; v != "" {
		md[metadata.ShardingKey] = v
	}
	md[metadata.ReconsumeTimes] = strconv.FormatInt(int64(ext.ReconsumeTimes), 10)
	md[metadata.RocketMQMsgID] = ext.MsgId
	md[metadata.RocketMQOffsetMsgID] = ext.OffsetMsgId
	md[metadata.RocketMQTopic] = ext.Topic
	if ext.Queue != nil {
		md[metadata.RocketMQQueueID] = strconv.Itoa(ext.Queue.QueueId)
	}
	md[metadata.RocketMQQueueOffset] = strconv.FormatInt(ext.QueueOffset, 10)
	md[metadata.RocketMQBornTimestamp] = strconv.FormatInt(ext.BornTimestamp, 10)
	md[metadata.RocketMQStoreTimestamp] = strconv.FormatInt(ext.StoreTimestamp, 10)

	payload := ext.Body
	if payload == nil {
		payload = []byte{}
	}
	msg := message.NewMessage(uuid, payload)
	msg.Metadata = md
	return msg, nil
}

// Timer properties of RocketMQ 5.x brokers (MessageConst.java).
const (
	// PropertyTimerDelayMs is the delay of a timer message in milliseconds.
	PropertyTimerDelayMs = "TIMER_DELAY_MS"
	// PropertyTimerDeliverMs is the delivery time of a timer message in Unix
	// milliseconds.
	PropertyTimerDeliverMs = "TIMER_DELIVER_MS"
)

// parseMillis parses a metadata.DelayMillis or metadata.DeliverAtMillis
// value: "" and "0" mean none, otherwise a positive decimal number.
func parseMillis(key, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, permanent(ErrInvalidMetadata, "%s must be a non-negative number of milliseconds, got %q", key, v)
	}
	return n, nil
}

// ParseDelayLevel parses a metadata.DelayLevel value: "" and "0" mean no
// delay, 1..18 are the broker's delay levels. Anything else is an error
// matching ErrInvalidMetadata.
func ParseDelayLevel(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	level, err := strconv.Atoi(v)
	if err != nil || level < 0 || level > 18 {
		return 0, permanent(ErrInvalidMetadata, "%s must be a delay level 0..18, got %q", metadata.DelayLevel, v)
	}
	return level, nil
}

// CheckProperties reports whether props can travel in a RocketMQ properties
// block: no name or value may contain the separator bytes \x01 or \x02 or
// invalid UTF-8 (single sends carry properties in a JSON header, which would
// replace it), names must not be empty, and the encoded block must fit in
// MaxPropertiesSize minus PropertiesHeadroom. The error matches
// ErrInvalidMetadata and policy.IsPermanent.
func CheckProperties(props map[string]string) error {
	size := 0
	for k, v := range props {
		if k == "" {
			return permanent(ErrInvalidMetadata, "empty property name")
		}
		if err := checkPropertyText(k); err != nil {
			return permanent(ErrInvalidMetadata, "property name %q: %v", k, err)
		}
		if err := checkPropertyText(v); err != nil {
			return permanent(ErrInvalidMetadata, "value of property %q: %v", k, err)
		}
		size += len(k) + len(v) + 2
	}
	return checkPropertiesSize(size)
}

// checkPropertiesSize checks the encoded size of a properties block.
func checkPropertiesSize(size int) error {
	if limit := MaxPropertiesSize - PropertiesHeadroom; size > limit {
		return permanent(ErrInvalidMetadata,
			"properties block of %d bytes exceeds %d (protocol limit %d minus %d bytes kept for client and broker properties)",
			size, limit, MaxPropertiesSize, PropertiesHeadroom)
	}
	return nil
}

// checkPropertyText reports a separator byte or invalid UTF-8 in s.
func checkPropertyText(s string) error {
	if i := strings.IndexAny(s, "\x01\x02"); i >= 0 {
		return fmt.Errorf("contains separator byte %#x at %d", s[i], i)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	return nil
}

// systemProperties are the property names RocketMQ (broker, clients, tools)
// gives a meaning to (MessageConst.java). They never become user metadata of a
// message from a plain producer.
var systemProperties = map[string]struct{}{
	"KEYS": {}, "TAGS": {}, "WAIT": {}, "DELAY": {}, "RETRY_TOPIC": {}, "REAL_TOPIC": {},
	"REAL_QID": {}, "TRAN_MSG": {}, "PGROUP": {}, "MIN_OFFSET": {}, "MAX_OFFSET": {},
	"BUYER_ID": {}, "ORIGIN_MESSAGE_ID": {}, "TRANSFER_FLAG": {}, "CORRECTION_FLAG": {},
	"MQ2_FLAG": {}, "RECONSUME_TIME": {}, "MSG_REGION": {}, "TRACE_ON": {}, "UNIQ_KEY": {},
	"MAX_RECONSUME_TIMES": {}, "CONSUME_START_TIME": {}, "TRAN_PREPARED_QUEUE_OFFSET": {},
	"TRANSACTION_CHECK_TIMES": {}, "CHECK_IMMUNITY_TIME_IN_SECONDS": {}, "INSTANCE_ID": {},
	"CORRELATION_ID": {}, "REPLY_TO_CLIENT": {}, "TTL": {}, "ARRIVE_TIME": {},
	"PUSH_REPLY_TIME": {}, "CLUSTER": {}, "MSG_TYPE": {}, "SHARDING_KEY": {},
	"__transactionId__": {}, "__STARTDELIVERTIME": {}, "TIMER_DELAY_SEC": {},
	"TIMER_DELAY_MS": {}, "TIMER_DELIVER_MS": {}, "TIMER_OUT_MS": {}, "TIMER_ENQUEUE_MS": {},
	"TIMER_DEQUEUE_MS": {}, "TIMER_ROLL_TIMES": {}, "TIMER_DEL_UNIQKEY": {},
	"INNER_MULTI_DISPATCH": {}, "INNER_MULTI_QUEUE_OFFSET": {}, "TRACE_CONTEXT": {},
	"UNIQ_KEY_INNER": {}, PropertyUUID: {},
}

func isSystemProperty(name string) bool {
	_, ok := systemProperties[name]
	return ok
}
