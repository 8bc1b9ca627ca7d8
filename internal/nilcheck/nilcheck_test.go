package nilcheck_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/reliamq/reliamq/internal/nilcheck"
)

func TestIsNil_sees_nil_interfaces_and_typed_nil_values(t *testing.T) {
	var buf *bytes.Buffer
	var w io.Writer = buf
	var fn func()
	var m map[string]int
	cases := []struct {
		name string
		v    any
		want bool
	}{
		{"nil", nil, true},
		{"typed nil pointer", buf, true},
		{"interface holding a typed nil pointer", w, true},
		{"nil func", fn, true},
		{"nil map", m, true},
		{"pointer", &bytes.Buffer{}, false},
		{"struct value", struct{}{}, false},
		{"int", 0, false},
	}
	for _, c := range cases {
		if got := nilcheck.IsNil(c.v); got != c.want {
			t.Errorf("IsNil(%s) = %v; want %v", c.name, got, c.want)
		}
	}
}

func TestRequired_and_Optional_wrap_the_sentinel_and_name_the_field(t *testing.T) {
	invalid := errors.New("pkg: invalid config")
	var typedNil *bytes.Buffer
	var w io.Writer = typedNil
	cases := []struct {
		name string
		err  error
		want string // "" for no error
	}{
		{"required nil", nilcheck.Required(invalid, "Inner", nil), "pkg: invalid config: Inner: required"},
		{"required typed nil", nilcheck.Required(invalid, "Inner", w), "pkg: invalid config: Inner: a nil *bytes.Buffer (did its constructor fail?)"},
		{"required set", nilcheck.Required(invalid, "Inner", &bytes.Buffer{}), ""},
		{"optional nil", nilcheck.Optional(invalid, "Clock", nil), ""},
		{"optional typed nil", nilcheck.Optional(invalid, "Clock", w), "pkg: invalid config: Clock: a nil *bytes.Buffer (did its constructor fail?)"},
	}
	for _, c := range cases {
		if c.want == "" {
			if c.err != nil {
				t.Errorf("%s: %v; want nil", c.name, c.err)
			}
			continue
		}
		if c.err == nil || c.err.Error() != c.want || !errors.Is(c.err, invalid) {
			t.Errorf("%s: %v; want %q wrapping the sentinel", c.name, c.err, c.want)
		}
	}
}
