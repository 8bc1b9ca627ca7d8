// Package nilcheck tells a nil interface value from a usable one, including
// an interface holding a typed nil pointer, which a plain == nil misses.
package nilcheck

import "reflect"

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
