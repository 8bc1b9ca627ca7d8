package inbox_test

const crashChildEnv = "RELIAMQ_INBOX_CRASH_CHILD"

func runCrashChild() int { return 2 }
