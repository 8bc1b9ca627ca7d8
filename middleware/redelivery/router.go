package redelivery

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// HandlerRegistration describes a handler for AddHandler.
type HandlerRegistration struct {
	// Topic is the topic the handler consumes. Required.
	Topic string
	// Subscriber consumes Topic as the Redelivery's consumer group. Required.
	Subscriber message.Subscriber
	// RetrySubscriber consumes the retry topic; it must belong to the same
	// consumer group. Default: Subscriber (every Watermill subscriber can
	// subscribe to several topics).
	RetrySubscriber message.Subscriber
	// PublishTopic and Publisher receive the messages the handler returns;
	// both empty for a handler that returns none.
	PublishTopic string
	Publisher    message.Publisher
	// HandlerFunc is the handler. Required.
	HandlerFunc message.HandlerFunc
}

// AddHandler registers reg.HandlerFunc, wrapped in the middleware, on router
// under the name Config.Handler consuming reg.Topic, and, with a scheduler
// that routes ByRetryTopic, a second time under Config.Handler+"_retry"
// consuming the retry topic, so a due message reaches the same handler in the
// same consumer group; it then calls Start once the router subscribed the
// retry topic. It returns the registered handlers. It fails, instead of panicking
// like the router, when a name is taken. Call it before router.Run (or call
// router.RunHandlers afterwards).
func (r *Redelivery) AddHandler(router *message.Router, reg HandlerRegistration) ([]*message.Handler, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidConfig, field}, args...)...))
	}
	if router == nil {
		bad("router", "required")
	}
	if reg.Topic == "" {
		bad("HandlerRegistration.Topic", "required")
	}
	if reg.Subscriber == nil {
		bad("HandlerRegistration.Subscriber", "required")
	}
	if reg.HandlerFunc == nil {
		bad("HandlerRegistration.HandlerFunc", "required")
	}
	if (reg.Publisher == nil) != (reg.PublishTopic == "") {
		bad("HandlerRegistration.PublishTopic", "set together with Publisher")
	}
	if r.route == ByRetryTopic && reg.Topic == r.cfg.RetryTopic {
		bad("HandlerRegistration.Topic", "%q is the retry topic", reg.Topic)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if reg.RetrySubscriber == nil || reg.RetrySubscriber == reg.Subscriber {
		// Both router handlers close their subscriber when the router stops;
		// several subscribers (watermill-sql's) do not survive two concurrent
		// Close calls.
		shared := &closeOnce{Subscriber: reg.Subscriber}
		reg.Subscriber, reg.RetrySubscriber = shared, shared
	}
	names := []string{r.cfg.Handler}
	topics := []string{reg.Topic}
	subs := []message.Subscriber{reg.Subscriber}
	if r.route == ByRetryTopic {
		names = append(names, r.cfg.Handler+"_retry")
		topics = append(topics, r.cfg.RetryTopic)
		subs = append(subs, reg.RetrySubscriber)
	}
	existing := router.Handlers()
	for _, n := range names {
		if _, taken := existing[n]; taken {
			return nil, fmt.Errorf("%w: Handler: a handler named %q is already registered on the router", ErrInvalidConfig, n)
		}
	}
	var out []*message.Handler
	for i, n := range names {
		var h *message.Handler
		if reg.Publisher == nil {
			hf := reg.HandlerFunc
			h = router.AddConsumerHandler(n, topics[i], subs[i], func(msg *message.Message) error {
				_, err := hf(msg)
				return err
			})
		} else {
			h = router.AddHandler(n, topics[i], subs[i], reg.PublishTopic, reg.Publisher, reg.HandlerFunc)
		}
		h.AddMiddleware(r.Middleware)
		out = append(out, h)
	}
	if r.route == ByRetryTopic {
		retry := out[1]
		go func() {
			select {
			case <-retry.Started():
				r.Start()
			case <-r.closed:
			}
		}()
	}
	return out, nil
}

// AddConsumerHandler is AddHandler for a handler that returns no messages.
func (r *Redelivery) AddConsumerHandler(router *message.Router, topic string, sub message.Subscriber, h message.NoPublishHandlerFunc) ([]*message.Handler, error) {
	var hf message.HandlerFunc
	if h != nil {
		hf = func(msg *message.Message) ([]*message.Message, error) { return nil, h(msg) }
	}
	return r.AddHandler(router, HandlerRegistration{Topic: topic, Subscriber: sub, HandlerFunc: hf})
}

// closeOnce forwards Close to the subscriber once.
type closeOnce struct {
	message.Subscriber
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.Subscriber.Close() })
	return c.err
}
