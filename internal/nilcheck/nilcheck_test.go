package nilcheck_test

import (
	"bytes"
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
