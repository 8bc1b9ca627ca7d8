package inbox_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/reliamq/reliamq/pkg/inbox"
)

func TestValidateKey(t *testing.T) {
	good := []inbox.Key{
		{UUID: "u"},
		{ConsumerGroup: "g", Handler: "h", UUID: "01J9-ü-€"},
		{ConsumerGroup: strings.Repeat("g", 255), Handler: strings.Repeat("h", 255), UUID: strings.Repeat("u", 255)},
	}
	for _, k := range good {
		if err := inbox.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v; want nil", k, err)
		}
	}
	bad := []struct {
		name string
		key  inbox.Key
	}{
		{"empty UUID", inbox.Key{ConsumerGroup: "g", Handler: "h"}},
		{"UUID over 255 bytes", inbox.Key{UUID: strings.Repeat("€", 86)}},
		{"group over 255 bytes", inbox.Key{ConsumerGroup: strings.Repeat("g", 256), UUID: "u"}},
		{"NUL in UUID", inbox.Key{UUID: "a\x00b"}},
		{"newline in handler", inbox.Key{Handler: "a\nb", UUID: "u"}},
		{"invalid UTF-8 in group", inbox.Key{ConsumerGroup: "\xff", UUID: "u"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := inbox.ValidateKey(tc.key); !errors.Is(err, inbox.ErrInvalidKey) {
				t.Errorf("ValidateKey = %v; want ErrInvalidKey", err)
			}
		})
	}
}
