// Package hooks is the one observer model of reliamq's components: a
// component's Config has `Hooks []any`, each value implements one or more of
// the component's hook interfaces (one method each, On<Event>(<Event>Params)),
// the constructor checks them with Validate and keeps each kind with Of, and
// the component calls every hook of a kind in order, on the goroutine where
// the event happens.
package hooks

import (
	"errors"
	"fmt"

	"github.com/reliamq/reliamq/internal/nilcheck"
)

// Kind reports whether a hook value implements one hook interface; Is[T]
// builds one.
type Kind func(any) bool

// Is is the Kind of hook interface T.
func Is[T any](h any) bool { _, ok := h.(T); return ok }

// Validate checks that every value of hooks is non-nil and implements at
// least one of kinds. Errors wrap invalid (the package's ErrInvalidConfig)
// and name the field: "Hooks[i]: <reason>", one error per bad value.
func Validate(invalid error, hooks []any, kinds ...Kind) error {
	var errs []error
	for i, h := range hooks {
		field := fmt.Sprintf("Hooks[%d]", i)
		if h == nil || nilcheck.IsNil(h) {
			errs = append(errs, nilcheck.Required(invalid, field, h))
			continue
		}
		ok := false
		for _, k := range kinds {
			if k(h) {
				ok = true
				break
			}
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%w: %s: %T implements no hook interface of this component", invalid, field, h))
		}
	}
	return errors.Join(errs...)
}

// Of returns, in order, the values of hooks that implement T.
func Of[T any](hooks []any) []T {
	var out []T
	for _, h := range hooks {
		if t, ok := h.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
