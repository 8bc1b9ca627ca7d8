package async

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
)

// detachedCtx keeps the values of a caller's context and takes cancellation
// from the pool's runCtx.
type detachedCtx struct {
	context.Context                 // runCtx: Done, Err, Deadline
	values          context.Context // the caller's context
}

func (c *detachedCtx) Value(key any) any { return c.values.Value(key) }

// detach moves each message onto a context that outlives the caller (see
// Publish). Background contexts, the common case, cost no allocation.
func (p *Publisher) detach(msgs []*message.Message) {
	for _, m := range msgs {
		c := m.Context()
		if c == context.Background() {
			m.SetContext(p.runCtx)
			continue
		}
		if p.original(m) != c {
			continue // already detached by this publisher
		}
		m.SetContext(&detachedCtx{Context: p.runCtx, values: c})
	}
}

// original returns the context a message had before detach.
func (p *Publisher) original(m *message.Message) context.Context {
	c := m.Context()
	if c == p.runCtx {
		return context.Background()
	}
	if d, ok := c.(*detachedCtx); ok && d.Context == p.runCtx {
		return d.values
	}
	return c
}

// reattach undoes detach.
func (p *Publisher) reattach(msgs []*message.Message) {
	for _, m := range msgs {
		m.SetContext(p.original(m))
	}
}

// release gives messages that Close could not send their own context back,
// without any cancellation: the pool's context is cancelled by then, and
// Leftovers must still be able to store them.
func (p *Publisher) release(msgs []*message.Message) {
	for _, m := range msgs {
		m.SetContext(context.WithoutCancel(p.original(m)))
	}
}
