package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(rocketmqtest.LeakOptions(),
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))...)
}
