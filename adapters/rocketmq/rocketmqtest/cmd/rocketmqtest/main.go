// Command rocketmqtest serves the embedded RocketMQ name server and broker on
// a TCP address, so any RocketMQ client or tool can be pointed at it:
//
//	go run ./adapters/rocketmq/rocketmqtest/cmd/rocketmqtest -addr 127.0.0.1:9876
//
// The same address is the name server and the broker. Data lives in memory
// and is lost when the command exits (SIGINT or SIGTERM).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "rocketmqtest:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. It prints the listening address on its first
// line of stdout, so scripts can start it on port 0 and read the port.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rocketmqtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg rocketmqtest.Config
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:9876", "TCP address to serve on (name server and broker)")
	fs.StringVar(&cfg.BrokerName, "broker-name", "broker-a", "broker name in routes")
	fs.StringVar(&cfg.ClusterName, "cluster", "DefaultCluster", "cluster name")
	fs.BoolVar(&cfg.DisableAutoCreateTopics, "no-auto-create", false, "answer TOPIC_NOT_EXIST for unknown topics instead of creating them")
	fs.IntVar(&cfg.DefaultQueueNums, "queues", 4, "queues of auto-created topics")
	fs.Float64Var(&cfg.DelayScale, "delay-scale", 1, "multiplier of the 18 delay levels (0.01 turns 10s into 100ms)")
	fs.DurationVar(&cfg.LongPollHold, "long-poll", time.Second, "longest hold of an empty pull")
	maxSize := fs.Int("max-message-size", 4<<20, "largest accepted message body in bytes")
	verbose := fs.Bool("v", false, "log connection events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.MaxMessageSize = *maxSize
	if *verbose {
		cfg.Logger = watermill.NewStdLoggerWithOut(stderr, true, false)
	}
	b, err := rocketmqtest.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, b.NameServerAddr())
	<-ctx.Done()
	return b.Close()
}
