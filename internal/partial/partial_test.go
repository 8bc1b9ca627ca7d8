package partial_test

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/internal/partial"
)

type byUUID struct{ ids []string }

func (e byUUID) Error() string      { return "partial" }
func (e byUUID) Accepted() []string { return e.ids }

type byIndex struct {
	byUUID
	idx []int
}

func (e byIndex) AcceptedIndexes() []int { return e.idx }

func TestAccepted_prefers_positions_and_counts_uuids_otherwise(t *testing.T) {
	sent := []*message.Message{message.NewMessage("a", nil), message.NewMessage("a", nil), message.NewMessage("b", nil)}
	cases := []struct {
		name string
		err  error
		want []bool
	}{
		{"no partial information", fmt.Errorf("down"), nil},
		{"one of two shared UUIDs", byUUID{[]string{"a"}}, []bool{true, false, false}},
		{"both shared UUIDs", fmt.Errorf("wrapped: %w", byUUID{[]string{"a", "a", "b"}}), []bool{true, true, true}},
		{"positions win", byIndex{byUUID{[]string{"a"}}, []int{1}}, []bool{false, true, false}},
		{"positions out of range are ignored", byIndex{byUUID{nil}, []int{-1, 3, 2}}, []bool{false, false, true}},
		{"empty positions", byIndex{byUUID{[]string{"a"}}, nil}, nil},
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, partial.Accepted(c.err, sent)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}
