package rocketmq

import (
	"fmt"
	"strings"

	"github.com/reliamq/reliamq/pkg/policy"
)

// MaxTopicLength is the longest topic name RocketMQ accepts (namespace
// included).
const MaxTopicLength = 127

// ValidateTopic checks a topic name against the broker's rules:
// non-empty, at most MaxTopicLength characters, and only the characters
// [%|a-zA-Z0-9_-]. It returns an error matching ErrInvalidTopic (and
// policy.IsPermanent) otherwise.
func ValidateTopic(topic string) error {
	if topic == "" {
		return permanent(ErrInvalidTopic, "empty topic")
	}
	if len(topic) > MaxTopicLength {
		return permanent(ErrInvalidTopic, "topic has %d characters, the limit is %d", len(topic), MaxTopicLength)
	}
	for i := 0; i < len(topic); i++ {
		if !topicBytes[topic[i]] {
			return permanent(ErrInvalidTopic, "topic %q has a character outside [%%|a-zA-Z0-9_-] at position %d", topic, i)
		}
	}
	return nil
}

// topicBytes is ^[%|a-zA-Z0-9_-]+$ as a table, checked byte by byte on the
// publish path.
var topicBytes = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "%|_-" {
		t[c] = true
	}
	return t
}()

// Prefixes of the topics through which the broker redelivers a consumer
// group's messages (%RETRY%<group>) and keeps its dead letters (%DLQ%<group>).
const (
	RetryTopicPrefix = "%RETRY%"
	DLQTopicPrefix   = "%DLQ%"
)

// systemTopics are the topics RocketMQ reserves for itself (TopicValidator's
// system topics): writing to them corrupts delayed delivery, transactions,
// tracing or topic auto-creation.
var systemTopics = map[string]struct{}{
	"TBW102": {}, "SCHEDULE_TOPIC_XXXX": {}, "BenchmarkTest": {}, "RMQ_SYS_TRANS_HALF_TOPIC": {},
	"RMQ_SYS_TRACE_TOPIC": {}, "RMQ_SYS_TRANS_OP_HALF_TOPIC": {}, "TRANS_CHECK_MAX_TIME_TOPIC": {},
	"SELF_TEST_TOPIC": {}, "OFFSET_MOVED_EVENT": {}, "CHECKPOINT_TOPIC": {},
}

// systemTopicPrefixes are the reserved name spaces: RMQ_SYS_ (transactions,
// tracing) and rmq_sys_ (the 5.x timer wheel, revive logs, broker member
// sync), in either case.
var systemTopicPrefixes = []string{"rmq_sys_"}

// ValidatePublishTopic checks a topic an ordinary publisher sends to: the
// rules of ValidateTopic, and none of the topics RocketMQ reserves. The
// broker's system topics (TBW102, SCHEDULE_TOPIC_XXXX, RMQ_SYS_TRANS_HALF_TOPIC,
// anything starting with RMQ_SYS_ or rmq_sys_, ...) and the retry and
// dead-letter topics of consumer groups (%RETRY%<group>, %DLQ%<group>) are
// refused with an error matching both ErrReservedTopic and ErrInvalidTopic
// (and policy.IsPermanent). Only the broker writes a group's %RETRY% and
// %DLQ% topics: a message published there reaches every handler of the group
// again, or sits with the dead letters. A Publisher whose
// PublisherConfig.RetryGroups names a group may write that group's topics
// (a redrive tool), and a Publisher whose Marshaler is a RetryTopicMarshaler
// may write every group's %RETRY% topic (replay of dead letters to the group
// that failed them).
func ValidatePublishTopic(topic string) error {
	return validatePublishTopic(topic, nil, false)
}

func validatePublishTopic(topic string, groups []string, anyRetryTopic bool) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	if anyRetryTopic && strings.HasPrefix(topic, RetryTopicPrefix) {
		return nil
	}
	if err := reservedTopic(topic, groups); err != "" {
		return policy.Permanent(fmt.Errorf("%w: %w: %q %s", ErrInvalidTopic, ErrReservedTopic, topic, err))
	}
	return nil
}

// reservedTopic says why topic is reserved, or "" when it is not.
func reservedTopic(topic string, groups []string) string {
	if _, ok := systemTopics[topic]; ok {
		return "is a RocketMQ system topic"
	}
	for _, p := range systemTopicPrefixes {
		if len(topic) >= len(p) && strings.EqualFold(topic[:len(p)], p) {
			return "is in the RocketMQ system topic space " + p + "*"
		}
	}
	var group string
	switch {
	case strings.HasPrefix(topic, RetryTopicPrefix):
		group = topic[len(RetryTopicPrefix):]
	case strings.HasPrefix(topic, DLQTopicPrefix):
		group = topic[len(DLQTopicPrefix):]
	default:
		return ""
	}
	for _, g := range groups {
		// The subscriber's groups are ConsumerGroup_<topic> (or a hash):
		// naming the consumer group covers them.
		if group == g || strings.HasPrefix(group, g+"_") {
			return ""
		}
	}
	return "is a consumer group's retry or dead-letter topic, written only by the broker (see PublisherConfig.RetryGroups)"
}
