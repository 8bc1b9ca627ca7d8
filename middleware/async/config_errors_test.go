package async_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/middleware/async"
)

// Every config error reads "async: invalid config: <Field>: <reason>" and
// matches ErrInvalidConfig, each problem of a joined error included (the
// field used to be followed by its value, not a colon, and only the first
// problem carried the sentinel's text).
func TestNewPublisher_reports_each_config_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	inner := gochannel.NewGoChannel(gochannel.Config{}, nil)
	defer inner.Close()
	tests := []struct {
		name   string
		cfg    async.Config
		fields []string
	}{
		{"negative sizes", async.Config{CoreWorkers: -1, QueueCapacity: -1}, []string{"CoreWorkers", "QueueCapacity"}},
		{"max below core", async.Config{CoreWorkers: 5, MaxWorkers: 2}, []string{"MaxWorkers"}},
		{"negative durations", async.Config{KeepAlive: -1, CloseTimeout: -1}, []string{"KeepAlive", "CloseTimeout"}},
		{"unknown full policy", async.Config{FullPolicy: 9}, []string{"FullPolicy"}},
		{"hooks that observe nothing", async.Config{Hooks: []any{newResults(), struct{}{}, nil, (*results)(nil)}},
			[]string{"Hooks[1]", "Hooks[2]", "Hooks[3]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := async.NewPublisher(inner, tt.cfg, nil)
			if !errors.Is(err, async.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if want := async.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want a line %q...", err, want)
				}
			}
			if verr := tt.cfg.Validate(); !errors.Is(verr, async.ErrInvalidConfig) {
				t.Errorf("Validate = %v, want ErrInvalidConfig", verr)
			}
		})
	}
}
