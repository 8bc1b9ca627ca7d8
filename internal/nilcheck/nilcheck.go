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

// Required returns an error naming field when v is nil or a typed nil, for a
// constructor to wrap in its ErrInvalidConfig.
func Required(field string, v any) error {
	switch {
	case v == nil:
		return fmt.Errorf("%s: required", field)
	case IsNil(v):
		return fmt.Errorf("%s: a nil %T (did its constructor fail?)", field, v)
	}
	return nil
}

// Optional returns an error naming field when v is a typed nil. A nil
// interface is fine: it selects the field's default.
func Optional(field string, v any) error {
	if v != nil && IsNil(v) {
		return fmt.Errorf("%s: a nil %T (did its constructor fail?)", field, v)
	}
	return nil
}
