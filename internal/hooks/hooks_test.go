package hooks_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/reliamq/reliamq/internal/hooks"
)

var errInvalid = errors.New("pkg: invalid config")

type sentHook interface{ OnSent(int) }
type failedHook interface{ OnFailed(int) }

type both struct{ log *[]string }

func (b both) OnSent(n int)   { *b.log = append(*b.log, "sent") }
func (b both) OnFailed(n int) { *b.log = append(*b.log, "failed") }

type onlySent struct{}

func (*onlySent) OnSent(int) {}

func TestValidate_names_each_bad_hook_and_wraps_the_package_error(t *testing.T) {
	var nilPtr *onlySent
	err := hooks.Validate(errInvalid, []any{both{}, 42, nilPtr, nil}, hooks.Is[sentHook], hooks.Is[failedHook])
	if !errors.Is(err, errInvalid) {
		t.Fatalf("got %v, want it to wrap errInvalid", err)
	}
	for _, want := range []string{"Hooks[1]: int implements no hook interface", "Hooks[2]: a nil *hooks_test.onlySent", "Hooks[3]: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Hooks[0]") {
		t.Errorf("a valid hook is reported: %v", err)
	}
	if err := hooks.Validate(errInvalid, []any{both{}, &onlySent{}}, hooks.Is[sentHook]); err != nil {
		t.Fatalf("valid hooks refused: %v", err)
	}
}

func TestOf_keeps_each_kind_in_order(t *testing.T) {
	var log []string
	hs := []any{both{log: &log}, &onlySent{}, both{log: &log}}
	if got := len(hooks.Of[sentHook](hs)); got != 3 {
		t.Fatalf("sent hooks %d, want 3", got)
	}
	failed := hooks.Of[failedHook](hs)
	if len(failed) != 2 {
		t.Fatalf("failed hooks %d, want 2", len(failed))
	}
	for _, h := range failed {
		h.OnFailed(1)
	}
	if strings.Join(log, ",") != "failed,failed" {
		t.Fatalf("log %v", log)
	}
}
