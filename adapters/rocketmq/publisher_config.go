package rocketmq

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// SendMode selects how the publisher hands messages to the broker.
type SendMode int

const (
	// SendSync (the default) sends and waits for the broker's answer; Publish
	// returns nil only for messages the broker stored with SEND_OK.
	SendSync SendMode = iota
	// SendAsync sends every message (or batch) of one Publish call without
	// waiting for the previous answer, then waits for all answers. Publish
	// still returns only after the broker answered or SendTimeout passed; the
	// gain is pipelining within a call. The client never retries async sends.
	// For fire-and-forget use middleware/async around a SendSync publisher.
	SendAsync
	// SendOneWay writes the request and returns without any answer from the
	// broker: at-most-once, a message can be lost without an error. Use it
	// only where losing messages is acceptable.
	SendOneWay
)

func (m SendMode) String() string {
	switch m {
	case SendSync:
		return "sync"
	case SendAsync:
		return "async"
	case SendOneWay:
		return "oneway"
	}
	return fmt.Sprintf("SendMode(%d)", int(m))
}

// QueueSelection selects the queue each message is written to.
type QueueSelection int

const (
	// RoundRobin (the default) spreads messages over the topic's queues.
	RoundRobin QueueSelection = iota
	// HashShardingKey writes messages with the same metadata.ShardingKey to the
	// same queue, so a consumer sees them in publish order per queue; messages
	// without a sharding key go to a random queue.
	HashShardingKey
)

// Credentials are ACL credentials; the zero value means no ACL.
type Credentials struct {
	AccessKey     string
	SecretKey     string
	SecurityToken string
}

func (c Credentials) validate(field string) error {
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return configError(field, "AccessKey and SecretKey must be set together")
	}
	if c.SecurityToken != "" && c.AccessKey == "" {
		return configError(field, "SecurityToken needs AccessKey and SecretKey")
	}
	return nil
}

// DefaultMaxMessageSize is the broker's default maximum body size (4 MiB).
const DefaultMaxMessageSize = 4 * 1024 * 1024

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// NameServers are the name server addresses ("127.0.0.1:9876"). Required.
	NameServers []string
	// GroupName is the producer group. Default "reliamq_producer".
	GroupName string
	// RetryGroups lists the consumer groups whose retry and dead-letter
	// topics (%RETRY%<group>, %DLQ%<group>, and those of <group>_<suffix>)
	// this publisher may write, as a redrive tool does. Default none: Publish
	// refuses those topics, like RocketMQ's system topics, with
	// ErrReservedTopic (see ValidatePublishTopic).
	RetryGroups []string
	// InstanceName identifies this producer's client in the process. Default:
	// unique per Publisher. The client shares connections between clients with
	// the same name, and such sharing keeps a closed consumer registered with
	// the broker; set it only if you know you want that.
	InstanceName string
	// Namespace is prefixed to topics and the group by the client ("ns%topic").
	// Default none. Topic validation applies to the prefixed name.
	Namespace string
	// Credentials for brokers with ACL enabled. Default none.
	Credentials Credentials
	// SendMode: SendSync (default), SendAsync or SendOneWay.
	SendMode SendMode
	// QueueSelection: RoundRobin (default) or HashShardingKey.
	QueueSelection QueueSelection
	// Batch sends the messages of one Publish call that share its topic as
	// broker batches (one request per batch) instead of one request per
	// message. Batches are cut so that each stays under MaxMessageSize. Default
	// false. Batches ignore metadata.DelayLevel (RocketMQ does not delay
	// batches); a message with a delay level is sent on its own.
	Batch bool
	// SendTimeout bounds each send (each batch in batch mode), retries by the
	// client included. Default 3s. The v2.1.2 client ignores its own timeout
	// option and bounds every attempt by 3s itself, so a longer SendTimeout
	// does not lengthen a single attempt. The adapter enforces SendTimeout
	// (a shorter one, the total over SendRetries) and a message context's
	// cancellation with a context of its own.
	SendTimeout time.Duration
	// SendRetries is how many times the client itself resends a failed
	// synchronous send before reporting the error. Default 0: retries belong
	// to middleware/retry, which backs off and counts them; the client resends
	// at once and only for some response codes. Negative values are invalid.
	SendRetries int
	// MaxMessageSize is the largest payload accepted, in bytes; larger
	// payloads fail with ErrMessageTooLarge before anything is sent. Default
	// DefaultMaxMessageSize (the broker's default maxMessageSize).
	MaxMessageSize int
	// Marshaler converts messages. Default DefaultMarshaler.
	Marshaler Marshaler
}

func (c *PublisherConfig) setDefaults() {
	c.NameServers = append([]string(nil), c.NameServers...)
	c.RetryGroups = append([]string(nil), c.RetryGroups...)
	if c.GroupName == "" {
		c.GroupName = "reliamq_producer"
	}
	if c.InstanceName == "" {
		c.InstanceName = "reliamq-pub-" + watermill.NewShortUUID()
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 3 * time.Second
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.Marshaler == nil {
		c.Marshaler = DefaultMarshaler{}
	}
}

// Validate reports every invalid field at once, each error wrapping
// ErrInvalidConfig and naming its field ("rocketmq: invalid config: <Field>:
// <reason>").
func (c PublisherConfig) Validate() error {
	var errs []error
	errs = append(errs, validateNameServers(c.NameServers))
	if c.SendMode < SendSync || c.SendMode > SendOneWay {
		errs = append(errs, configError("SendMode", "unknown mode %d", int(c.SendMode)))
	}
	if c.QueueSelection < RoundRobin || c.QueueSelection > HashShardingKey {
		errs = append(errs, configError("QueueSelection", "unknown selection %d", int(c.QueueSelection)))
	}
	if c.SendTimeout < 0 {
		errs = append(errs, configError("SendTimeout", "must not be negative, got %s", c.SendTimeout))
	}
	if c.SendRetries < 0 {
		errs = append(errs, configError("SendRetries", "must not be negative, got %d", c.SendRetries))
	}
	if c.MaxMessageSize < 0 {
		errs = append(errs, configError("MaxMessageSize", "must not be negative, got %d", c.MaxMessageSize))
	}
	errs = append(errs, c.Credentials.validate("Credentials"))
	return errors.Join(errs...)
}

func validateNameServers(addrs []string) error {
	if len(addrs) == 0 {
		return configError("NameServers", "at least one name server address is required")
	}
	for i, a := range addrs {
		if a == "" {
			return configError(fmt.Sprintf("NameServers[%d]", i), "empty address")
		}
	}
	return nil
}
