package policy_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/reliamq/reliamq/pkg/policy"
)

func TestNewClosedError_matches_itself_and_ErrClosed_only(t *testing.T) {
	a, b := policy.NewClosedError("a: closed"), policy.NewClosedError("b: closed")
	wrapped := policy.Permanent(fmt.Errorf("send: %w", a))
	if !errors.Is(wrapped, a) || !errors.Is(wrapped, policy.ErrClosed) {
		t.Errorf("wrapped %v does not match its sentinel and ErrClosed", wrapped)
	}
	if errors.Is(wrapped, b) {
		t.Errorf("%v matches another package's closed error", wrapped)
	}
	if errors.Is(errors.New("a: closed"), policy.ErrClosed) {
		t.Error("an error with the same text matches ErrClosed")
	}
	if a.Error() != "a: closed" {
		t.Errorf("text %q", a.Error())
	}
}
