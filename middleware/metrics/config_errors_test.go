package metrics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reliamq/reliamq/middleware/metrics"
)

// Every config error reads "metrics: invalid config: <Field>: <reason>" and
// matches ErrInvalidConfig.
func TestNew_reports_each_config_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	tests := []struct {
		name   string
		cfg    metrics.Config
		fields []string
	}{
		{"no registerer", metrics.Config{}, []string{"Registerer"}},
		{"no registerer, negative timeout", metrics.Config{ScrapeTimeout: -time.Second}, []string{"Registerer", "ScrapeTimeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metrics.New(tt.cfg, nil)
			if !errors.Is(err, metrics.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if want := metrics.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want a line %q...", err, want)
				}
			}
		})
	}
}
