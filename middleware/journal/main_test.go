package journal_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestMain(m *testing.M) {
	// The crash test and the benchmark run the RocketMQ client, which leaves
	// goroutines behind after Shutdown; our own goroutines are still checked.
	goleak.VerifyTestMain(m, rocketmqtest.LeakOptions()...)
}
