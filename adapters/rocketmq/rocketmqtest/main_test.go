package rocketmqtest_test

import (
	"os"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestMain(m *testing.M) {
	// The v2.1.2 client panics on SendAsync timeouts unless a panic handler
	// is installed, and logs every few seconds at info level.
	primitive.PanicHandler = func(any) {}
	if lvl := os.Getenv("RMQT_CLIENT_LOG"); lvl != "" {
		rlog.SetLogLevel(lvl)
	} else {
		rlog.SetLogLevel("fatal")
	}
	rocketmqtest.VerifyNoLeaks(m)
}
