package rocketmq

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
		if !validTopicByte(topic[i]) {
			return permanent(ErrInvalidTopic, "topic %q has a character outside [%%|a-zA-Z0-9_-] at position %d", topic, i)
		}
	}
	return nil
}

// validTopicByte is a byte-wise check of ^[%|a-zA-Z0-9_-]+$; a table avoids the
// regexp on the publish path.
func validTopicByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '%', c == '|', c == '_', c == '-':
		return true
	}
	return false
}
