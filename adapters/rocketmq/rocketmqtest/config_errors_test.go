package rocketmqtest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// Every config error reads "rocketmqtest: invalid config: <Field>: <reason>"
// and matches ErrInvalidConfig, one field per problem.
func TestConfig_Validate_reports_each_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	cfg := rocketmqtest.Config{
		DelayScale: -1, MaxMessageSize: -1, MaxReconsumeTimes: -1, TransactionCheckInterval: -time.Second,
		TransactionCheckMax: -1, ClientExpiry: -1, MaxFrameSize: -1, BrokerName: strings.Repeat("b", 128),
		DelayLevels: []time.Duration{time.Second, -time.Second},
	}
	err := cfg.Validate()
	if !errors.Is(err, rocketmqtest.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	for _, f := range []string{"DelayScale", "MaxMessageSize", "MaxReconsumeTimes", "TransactionCheckInterval",
		"TransactionCheckMax", "ClientExpiry", "MaxFrameSize", "BrokerName", "DelayLevels[1]"} {
		if want := rocketmqtest.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want a line %q...", err, want)
		}
	}
}
