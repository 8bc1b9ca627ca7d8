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
