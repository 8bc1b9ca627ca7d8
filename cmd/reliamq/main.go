// Command reliamq inspects and replays the messages reliamq keeps in SQL
// tables: the fallback store (messages the broker did not take, and rows the
// relay poisoned) and dead letters written by the redelivery middleware
// through a sqlstore.Publisher.
//
// Usage:
//
//	reliamq fallback ls|show|replay|purge [flags] [ids...]
//	reliamq dlq      ls|show|replay|purge [flags] [ids...]
//	reliamq version | completion bash|zsh|fish|powershell | help [command]
//
// Run "reliamq --help" or "reliamq fallback ls --help" for the flags, and see
// docs/operations-cli.md for examples, output formats (-o table|json) and the
// exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops the command cleanly; restoring the default
		// lets a second one kill it.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
