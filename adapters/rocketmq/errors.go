package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	rmqerrors "github.com/apache/rocketmq-client-go/v2/errors"

	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Sentinel errors. Every error returned by Publish, Subscribe and the
// constructors matches one of them with errors.Is (or is a context error of the
// caller's own context). Errors that must not be retried are also marked with
// policy.Permanent, so the reliamq middleware never retries or stores them.
var (
	// ErrInvalidConfig is wrapped by every error NewPublisher, NewSubscriber,
	// PublisherConfig.Validate and SubscriberConfig.Validate return for a bad
	// config: "rocketmq: invalid config: <Field>: <reason>", one per problem,
	// joined with errors.Join.
	ErrInvalidConfig = errors.New("rocketmq: invalid config")
	// ErrClosed is returned by Publish and Subscribe after Close. Permanent;
	// also matches policy.ErrClosed.
	ErrClosed = policy.NewClosedError("rocketmq: closed")
	// ErrNotSubscribed: Subscriber.WaitReady for a topic without a running
	// subscription.
	ErrNotSubscribed = errors.New("rocketmq: not subscribed")
	// ErrInvalidTopic is returned for an empty topic, a topic with characters
	// outside [%|a-zA-Z0-9_-], or one longer than 127 characters (namespace
	// included). Nothing is sent. Permanent.
	ErrInvalidTopic = errors.New("rocketmq: invalid topic")
	// ErrReservedTopic is returned by Publish, together with ErrInvalidTopic,
	// for a topic RocketMQ reserves: a system topic such as TBW102 or
	// SCHEDULE_TOPIC_XXXX, or a consumer group's %RETRY% or %DLQ% topic (see
	// ValidatePublishTopic). Nothing is sent. Permanent.
	ErrReservedTopic = errors.New("rocketmq: reserved topic")
	// ErrEmptyUUID is returned by Publish for a message whose UUID is empty
	// (msgcheck.ErrEmptyUUID, the same value in every reliamq package).
	// Nothing is sent. Permanent.
	ErrEmptyUUID = msgcheck.ErrEmptyUUID
	// ErrInvalidUUID is returned by Publish for a UUID longer than 255 bytes or
	// holding invalid UTF-8 or control characters (msgcheck.ErrInvalidUUID).
	// Nothing is sent. Permanent.
	ErrInvalidUUID = msgcheck.ErrInvalidUUID
	// ErrMessageTooLarge is returned when a payload exceeds the configured
	// MaxMessageSize (4 MiB by default), or when the broker refuses a message as
	// illegal. Nothing is sent for a payload over the limit. Permanent.
	ErrMessageTooLarge = errors.New("rocketmq: message too large")
	// ErrInvalidMetadata is returned when metadata cannot travel as RocketMQ
	// properties: a key or value containing the separator bytes \x01 or \x02,
	// NUL (which the SQL store behind the fallback cannot keep: the rules of
	// pkg/msgcheck, shared by every reliamq publisher) or invalid UTF-8, a
	// properties block over the protocol's 32767-byte limit, or a malformed
	// send control (a delay level that is not 0..18). Nothing is sent.
	// Permanent.
	ErrInvalidMetadata = errors.New("rocketmq: invalid metadata")
	// ErrNilMessage is returned when Publish is given a nil message. Nothing is
	// sent. Permanent.
	ErrNilMessage = errors.New("rocketmq: nil message")
	// ErrNoPermission is returned when the broker answers NO_PERMISSION (ACL or
	// a topic that is not writable). Permanent.
	ErrNoPermission = errors.New("rocketmq: no permission")
	// ErrBrokerUnavailable marks every failure worth retrying: a send timeout,
	// a refused or dropped connection, SYSTEM_ERROR, SYSTEM_BUSY,
	// SERVICE_NOT_AVAILABLE, a topic with no route yet, a non-OK send status,
	// and any broker answer the adapter does not recognise. The message may or
	// may not have been stored (a timeout can hide a successful store), so a
	// retry can duplicate it; the UUID stays the same.
	ErrBrokerUnavailable = errors.New("rocketmq: broker unavailable")
	// ErrSendTimeout is wrapped, together with ErrBrokerUnavailable, when a
	// send did not complete within PublisherConfig.SendTimeout. It deliberately
	// does not wrap context.DeadlineExceeded: the deadline is the adapter's,
	// not the caller's, and the send is worth retrying.
	ErrSendTimeout = errors.New("rocketmq: send timeout")
	// ErrTopicNotExist is returned by Publish when the topic does not exist
	// and the broker will not create it. When the name servers say that
	// neither the topic nor the default topic TBW102 (through which brokers
	// with autoCreateTopicEnable create topics on first send) has a route
	// while brokers are registered, and every registered master's
	// configuration says autoCreateTopicEnable=false, topic creation is
	// disabled and the error is permanent: only an operator creating the
	// topic changes the outcome, and nothing was sent. With no broker
	// registered, or a registered broker that creates topics or does not
	// answer (one that has just started, listed before its routes), it stays
	// retryable. When a broker answers TOPIC_NOT_EXIST although a route
	// exists (a topic being created or deleted), the error also matches
	// ErrBrokerUnavailable and is worth retrying. It lets callers tell an
	// unknown topic from an unreachable broker.
	ErrTopicNotExist = errors.New("rocketmq: topic does not exist")
)

// Broker response codes the adapter classifies (RocketMQ ResponseCode).
const (
	codeSystemError         = 1
	codeSystemBusy          = 2
	codeMessageIllegal      = 13
	codeServiceNotAvailable = 14
	codeNoPermission        = 16
	codeTopicNotExist       = 17
)

// SendError describes a failed send. It matches ErrBrokerUnavailable (and
// ErrSendTimeout) when the send is worth retrying, or ErrNoPermission /
// ErrMessageTooLarge when it is not; Unwrap exposes the cause.
type SendError struct {
	// Topic is the topic of the failed send.
	Topic string
	// MessageUUID is the UUID of the first message of the failed send.
	MessageUUID string
	// Index is the position, in the Publish call, of the first message whose
	// send failed. Messages before Index were stored by the broker; messages
	// from Index on were not confirmed (a timed-out send may still have been
	// stored).
	Index int
	// Code is the broker's response code, or 0 when the broker did not answer
	// (timeout, connection error) or answered with a non-OK send status.
	Code int
	// Err is the classified cause.
	Err error

	accepted    []string
	acceptedIdx []int
}

// Accepted returns the UUIDs of the messages of the failed Publish that the
// broker confirmed (SEND_OK) before or despite the failure, in Publish order,
// so a retry or a fallback store handles only the others (see
// middleware/retry.PartialError). In SendSync mode they are the messages
// before Index; in SendAsync mode every request the broker confirmed, before
// or after Index. In SendOneWay mode, which has no confirmations, they are the
// messages written to the broker before Index: resending them would duplicate
// what a successful one-way Publish also leaves unconfirmed.
func (e *SendError) Accepted() []string { return e.accepted }

// AcceptedIndexes returns the positions, in the Publish call, of the messages
// Accepted lists, in the same order (middleware/retry.PartialIndexError). Two
// messages of one call may share a UUID; positions tell them apart.
func (e *SendError) AcceptedIndexes() []int { return e.acceptedIdx }

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("rocketmq: send to topic ")
	b.WriteString(strconv.Quote(e.Topic))
	if e.MessageUUID != "" {
		b.WriteString(" (message ")
		b.WriteString(e.MessageUUID)
		b.WriteString(")")
	}
	if e.Code != 0 {
		b.WriteString(" refused with code ")
		b.WriteString(strconv.Itoa(e.Code))
	}
	b.WriteString(" failed: ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the classified cause.
func (e *SendError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying: it matches
// ErrBrokerUnavailable and is not marked permanent. Context errors of the
// caller's own context are not retryable.
func IsRetryable(err error) bool {
	if err == nil || policy.IsPermanent(err) {
		return false
	}
	return errors.Is(err, ErrBrokerUnavailable)
}

// permanent wraps a bad-input error so that errors.Is sees the sentinel and
// policy.IsPermanent sees the verdict.
func permanent(sentinel error, format string, args ...any) error {
	return policy.Permanent(fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...)))
}

// classifyClientError turns an error from rocketmq-client-go into one of ours.
// callerCtx is the caller's context: when it ended, its error is returned as is
// (never retried). timedOut says that the adapter's own send deadline passed.
func classifyClientError(callerCtx context.Context, timedOut bool, se *SendError, err error) error {
	if callerCtx.Err() != nil {
		return fmt.Errorf("rocketmq: send to topic %q: %w", se.Topic, callerCtx.Err())
	}
	if errors.Is(err, rmqerrors.ErrNotRunning) || errors.Is(err, rmqerrors.ErrService) {
		se.Err = policy.Permanent(fmt.Errorf("%w: %v", ErrClosed, err))
		return se
	}
	if timedOut || errors.Is(err, rmqerrors.ErrRequestTimeout) {
		// %v on purpose: a dial error may wrap context.DeadlineExceeded, which
		// the retry policy treats as the caller giving up.
		se.Err = fmt.Errorf("%w: %w: %v", ErrBrokerUnavailable, ErrSendTimeout, err)
		return se
	}
	if code, ok := responseCode(err); ok {
		se.Code = code
		switch code {
		case codeNoPermission:
			se.Err = fmt.Errorf("%w: %w", ErrNoPermission, err)
			return policy.Permanent(se)
		case codeMessageIllegal:
			se.Err = fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
			return policy.Permanent(se)
		case codeTopicNotExist:
			// A route exists (the client found a broker), so the topic is
			// being created or deleted: worth retrying. The publisher turns
			// this into a permanent error when topic creation is disabled.
			se.Err = fmt.Errorf("%w: %w: %w", ErrBrokerUnavailable, ErrTopicNotExist, err)
			return se
		}
		// SYSTEM_ERROR, SYSTEM_BUSY, SERVICE_NOT_AVAILABLE and anything
		// unknown: the broker may accept the message later.
		se.Err = fmt.Errorf("%w: %w", ErrBrokerUnavailable, err)
		return se
	}
	// Connection refused or reset, EOF, dial errors, "route info not found":
	// all transient from the caller's point of view.
	se.Err = fmt.Errorf("%w: %v", ErrBrokerUnavailable, errNoCtx(err))
	return se
}

// errNoCtx keeps the text of err but drops context errors from its chain, so
// a dial that hit the adapter's deadline is not mistaken for the caller's.
func errNoCtx(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return errors.New(err.Error())
	}
	return err
}

// responseCode extracts the broker response code from the client's
// "CODE: %d, DESC: %s" errors.
func responseCode(err error) (int, bool) {
	msg := err.Error()
	i := strings.Index(msg, "CODE: ")
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len("CODE: "):]
	j := strings.IndexByte(rest, ',')
	if j < 0 {
		j = len(rest)
	}
	code, convErr := strconv.Atoi(strings.TrimSpace(rest[:j]))
	if convErr != nil {
		return 0, false
	}
	return code, true
}

// configError reports one config problem: ErrInvalidConfig, the field, the
// reason (format may use %w).
func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidConfig, field}, args...)...)
}
