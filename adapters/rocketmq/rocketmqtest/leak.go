package rocketmqtest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// LeakOptions returns goleak options that ignore the goroutines
// rocketmq-client-go v2.1.2 leaves behind after Shutdown, so tests can check
// their own goroutines while using the real client:
//   - everything the client starts through primitive.WithRecover: the
//     statistics goroutines that sleep until the next minute, hour or month,
//     cleanExpiredMsg (sleeps 15 min before checking for shutdown), the
//     client's periodic tasks (10 s initial sleeps), connection readers and
//     response callbacks;
//   - in-flight pulls, which wait up to 30 s for a response that a closed
//     connection never fails;
//   - rebalances started by consumer Start, which can still be waiting for
//     the client's rebalance lock after Shutdown;
//   - the go-cache janitor the client starts at package init.
//
// The broker's own goroutines are not ignored: Close waits for all of them.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/primitive.WithRecover"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).pullMessage"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).Start.func1.1"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).Start.func1.1.1"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal/remote.(*ResponseFuture).waitResponse"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).RebalanceImmediately"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).RebalanceIfNotPaused"),
		goleak.IgnoreAnyFunction("github.com/patrickmn/go-cache.(*janitor).Run"),
	}
}

// VerifyNoLeaks is a TestMain body: it runs the tests and, when they passed,
// fails the run if goroutines other than the client's leftovers
// (LeakOptions) and extra are still running. goleak.Find retries for about
// two seconds; VerifyNoLeaks asks five times, because broker clients closed
// by the last test can take longer to wind down on a loaded machine or
// under -race. It does not return.
//
//	func TestMain(m *testing.M) { rocketmqtest.VerifyNoLeaks(m) }
func VerifyNoLeaks(m *testing.M, extra ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		opts := append(LeakOptions(), extra...)
		var err error
		for range 5 {
			if err = goleak.Find(opts...); err == nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
