// Package nilcheck tells a nil interface value from a usable one, including
// an interface holding a typed nil pointer, which a plain == nil misses.
package nilcheck

import (
	"fmt"
	"reflect"
)

// IsNil reports whether v is nil or holds a nil pointer, map, slice, func,
// channel or interface: a constructor given such a value would accept it and
// fail on first use (a typed-nil *retry.Publisher from a failed constructor,
// for example).
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan,
		reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// Required returns an error wrapping invalid (the package's ErrInvalidConfig)
// and naming field when v is nil or a typed nil, in the shape every config
// error has: "<invalid>: <field>: <reason>".
func Required(invalid error, field string, v any) error {
	switch {
	case v == nil:
		return fmt.Errorf("%w: %s: required", invalid, field)
	case IsNil(v):
		return fmt.Errorf("%w: %s: a nil %T (did its constructor fail?)", invalid, field, v)
	}
	return nil
}

// Optional is Required for a field that may be left nil but must not hold a
// typed nil.
func Optional(invalid error, field string, v any) error {
	if v != nil && IsNil(v) {
		return fmt.Errorf("%w: %s: a nil %T (did its constructor fail?)", invalid, field, v)
	}
	return nil
}
