package main

import (
	"errors"
	"fmt"
)

// Exit codes, documented in docs/operations-cli.md and in the usage text.
const (
	exitOK           = 0 // the command did what was asked (possibly on zero rows)
	exitRuntime      = 1 // database or broker failure, replay stopped on a failed message
	exitUsage        = 2 // bad command line, unrecognised or malformed DSN
	exitNotFound     = 3 // missing table, unknown topic, no row with the given id
	exitNotConfirmed = 4 // purge not confirmed; nothing deleted
)

// exitError carries the exit code of a failure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func notFoundError(format string, args ...any) error {
	return &exitError{code: exitNotFound, err: fmt.Errorf(format, args...)}
}

func notConfirmedError(format string, args ...any) error {
	return &exitError{code: exitNotConfirmed, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the process exit code: runtime failure unless
// the error says otherwise.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitRuntime
}
