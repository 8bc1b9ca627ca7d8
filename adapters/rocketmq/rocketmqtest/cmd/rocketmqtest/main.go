// Command rocketmqtest serves the embedded RocketMQ name server and broker on
// a TCP address, so any RocketMQ client or tool can be pointed at it:
//
//	go run ./adapters/rocketmq/rocketmqtest/cmd/rocketmqtest
//	go run ./adapters/rocketmq/rocketmqtest/cmd/rocketmqtest -addr 127.0.0.1:0
//
// The same address is the name server and the broker. Its default,
// 127.0.0.1:29876 (DefaultAddr), is not a port a real RocketMQ uses (name
// server 9876, brokers 10909-10912), so a tool pointed at the embedded broker
// cannot reach a real one by mistake, and the embedded broker never shadows
// a real one. When the port is taken the command refuses to start, says which
// process holds it where the system tells (Linux /proc), and whether it
// answers the RocketMQ protocol; it exits with status 1.
//
// The first line on stdout is the address served (useful with port 0). Data
// lives in memory and is lost when the command exits (SIGINT or SIGTERM).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// DefaultAddr is where the command serves unless -addr says otherwise: a
// real RocketMQ name server's port 9876 plus 20000.
const DefaultAddr = "127.0.0.1:29876"

// prefix starts every error line the command prints.
const prefix = "rocketmqtest: "

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is err with the command's prefix once: the library's own errors
// already start with it.
func errorLine(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, prefix) {
		return msg
	}
	return prefix + msg
}

// run serves until ctx is done. It prints the listening address on its first
// line of stdout, so scripts can start it on port 0 and read the port.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rocketmqtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg rocketmqtest.Config
	fs.StringVar(&cfg.Addr, "addr", DefaultAddr, "TCP address to serve on (name server and broker); not 9876, a real RocketMQ name server's port")
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
		if errors.Is(err, syscall.EADDRINUSE) {
			return portInUse(cfg.Addr, err)
		}
		return err
	}
	fmt.Fprintln(stdout, b.NameServerAddr())
	<-ctx.Done()
	return b.Close()
}
