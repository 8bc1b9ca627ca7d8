// Package policy describes retries once, for every stage of a message's life:
// the send-side retry (middleware/retry), the fallback relay (middleware/fallback)
// and consumer redelivery (middleware/redelivery).
//
// A Policy answers four questions, each with a pure function so that a test or a
// document can print a whole timeline without waiting for it:
//
//   - How many attempts? MaxAttempts counts every attempt including the first,
//     as Spring Retry's max-attempts does: 1 means "no retry", 3 means "the first
//     attempt and two retries". Zero means unlimited (the loop is then bounded by
//     MaxElapsed or by its context). See Exhausted.
//   - How long before retry n? Retry n (n >= 1) is the n-th retry, that is attempt
//     n+1. Delay(n) is the wait before it: the Backoff's delay, capped by
//     MaxDelay. Delay is pure; JitteredDelay applies the Jitter with a random
//     number the caller supplies, so the arithmetic stays testable.
//   - Which errors are worth retrying? Retryable: never nil, never a Permanent
//     error, never context.Canceled or context.DeadlineExceeded; the optional
//     Classifier decides the rest.
//   - How long in total? MaxElapsed, an optional budget measured from the
//     first attempt. Each stage documents its exact starting point: the retry
//     publisher starts it when the first attempt fails, for example.
//
// RocketMQ returns the broker's consumer retry schedule (16 retries, 10s up to
// 2h, 4h46m in total); Fixed, Exponential and Table build other schedules.
//
// Policies are plain values: copy them freely. A Policy is safe for concurrent
// use as long as its Backoff and Classifier are (the built-in backoffs are
// immutable).
//
// Config loads a Policy from YAML and environment variables with the key names a
// Spring Retry user knows (max-attempts, init-interval, multiplier,
// max-interval), plus schedule: rocketmq or an explicit list of delays.
package policy
