package rocketmq

import (
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/pkg/metadata"
)

// RetryTopicMarshaler wraps a Marshaler (default DefaultMarshaler) so that
// messages published to a consumer group's retry topic, %RETRY%<group>, reach
// that group's subscription of their original topic: the consumer hands a
// message of %RETRY%<group> to the subscription its RETRY_TOPIC property names
// (and retries it forever without one), and this marshaler sets that property
// from metadata.OriginalTopic. redelivery.Replay of dead letters of Native
// mode publishes this way, so only the failed group sees the message again.
// Messages to other topics are marshaled unchanged. A Publisher with this
// marshaler may publish to any %RETRY% topic (see ValidatePublishTopic).
type RetryTopicMarshaler struct {
	Marshaler Marshaler
}

var _ Marshaler = RetryTopicMarshaler{}

func (m RetryTopicMarshaler) inner() Marshaler {
	if m.Marshaler == nil {
		return DefaultMarshaler{}
	}
	return m.Marshaler
}

// Marshal implements Marshaler.
func (m RetryTopicMarshaler) Marshal(topic string, msg *message.Message) (*primitive.Message, error) {
	out, err := m.inner().Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(topic, "%RETRY%") {
		if orig := msg.Metadata.Get(metadata.OriginalTopic); orig != "" {
			out.WithProperty(primitive.PropertyRetryTopic, orig)
		}
	}
	return out, nil
}

// Unmarshal implements Marshaler.
func (m RetryTopicMarshaler) Unmarshal(ext *primitive.MessageExt) (*message.Message, error) {
	return m.inner().Unmarshal(ext)
}

func isRetryTopicMarshaler(m Marshaler) bool {
	switch m.(type) {
	case RetryTopicMarshaler, *RetryTopicMarshaler:
		return true
	}
	return false
}
