// Package partial reads which messages of a failed multi-message Publish a
// backend accepted, for the retry publisher and the fallback.
package partial

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
)

type byIndex interface {
	error
	AcceptedIndexes() []int
}

type byUUID interface {
	error
	Accepted() []string
}

// Accepted marks the messages of sent (the messages of the failed call, in
// order) that err reports as accepted, or returns nil when it reports none.
// Positions (AcceptedIndexes) win when err has them: two messages of one call
// may share a UUID. From UUIDs alone (Accepted), each accepted UUID stands for
// one message with that UUID, the earliest not yet marked, so a UUID accepted
// once never covers a second message that shares it.
func Accepted(err error, sent []*message.Message) []bool {
	var bi byIndex
	if errors.As(err, &bi) {
		idx := bi.AcceptedIndexes()
		if len(idx) == 0 {
			return nil
		}
		marked := make([]bool, len(sent))
		for _, i := range idx {
			if i >= 0 && i < len(sent) {
				marked[i] = true
			}
		}
		return marked
	}
	var bu byUUID
	if !errors.As(err, &bu) {
		return nil
	}
	accepted := bu.Accepted()
	if len(accepted) == 0 {
		return nil
	}
	left := make(map[string]int, len(accepted))
	for _, id := range accepted {
		left[id]++
	}
	marked := make([]bool, len(sent))
	for i, m := range sent {
		if m != nil && left[m.UUID] > 0 {
			left[m.UUID]--
			marked[i] = true
		}
	}
	return marked
}
