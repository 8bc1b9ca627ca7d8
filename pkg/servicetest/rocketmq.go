package servicetest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RocketMQServer is a real Apache RocketMQ cluster (one name server, one or
// more brokers) started outside the tests by the rocketmq-server kit, as
// .ci/run does. A test finds it through two environment variables:
//
//	<EnvPrefix>_NAMESRV  the name server address, e.g. 127.0.0.1:9876
//	<EnvPrefix>_DIR      the kit's work directory (for stop/kill/start of a broker)
//
// and the kit itself through RELIAMQ_ROCKETMQ_SERVER (the path of the
// rocketmq-server script). Unlike the other services there is no default
// address: when the variables are unset the test is skipped, or fails under CI.
type RocketMQServer struct {
	Name      string // e.g. "RocketMQ 4.9.4"
	Version   string // e.g. "4.9.4"
	EnvPrefix string // e.g. RELIAMQ_ROCKETMQ494
}

// The real RocketMQ clusters .ci/run starts.
var (
	RocketMQ494 = RocketMQServer{Name: "RocketMQ 4.9.4", Version: "4.9.4", EnvPrefix: "RELIAMQ_ROCKETMQ494"}
	RocketMQ520 = RocketMQServer{Name: "RocketMQ 5.2.0", Version: "5.2.0", EnvPrefix: "RELIAMQ_ROCKETMQ520"}
)

// RocketMQServerScript is the variable naming the rocketmq-server script.
const RocketMQServerScript = "RELIAMQ_ROCKETMQ_SERVER"

// RocketMQCluster is a running real cluster as a test sees it.
type RocketMQCluster struct {
	Version     string
	NameServer  string   // host:port
	Brokers     []string // broker addresses, broker-a first
	BrokerNames []string // broker-a, broker-b, ...
	Dir         string   // kit work directory; empty when control is unavailable
	script      string
}

// Cluster returns the cluster for a test that only sends and receives. It
// holds a shared lock on the cluster until the test ends, so a test in another
// package that stops or kills a broker (Exclusive) waits for it.
func (s RocketMQServer) Cluster(t testing.TB) *RocketMQCluster {
	t.Helper()
	return s.open(t, syscall.LOCK_SH)
}

// Exclusive returns the cluster for a test that stops, kills or restarts
// brokers. It holds an exclusive lock until the test ends, so no other test
// using the same cluster runs meanwhile, and it needs the kit (Dir and
// RELIAMQ_ROCKETMQ_SERVER) as well as the address.
func (s RocketMQServer) Exclusive(t testing.TB) *RocketMQCluster {
	t.Helper()
	c := s.open(t, syscall.LOCK_EX)
	if c.Dir == "" || c.script == "" {
		s.unavailable(t, fmt.Errorf("%s_DIR and %s must be set to control brokers", s.EnvPrefix, RocketMQServerScript))
	}
	return c
}

func (s RocketMQServer) open(t testing.TB, how int) *RocketMQCluster {
	t.Helper()
	ns := os.Getenv(s.EnvPrefix + "_NAMESRV")
	if ns == "" {
		s.unavailable(t, fmt.Errorf("%s_NAMESRV is not set", s.EnvPrefix))
	}
	conn, err := net.DialTimeout("tcp", ns, 2*time.Second)
	if err != nil {
		s.unavailable(t, err)
	}
	_ = conn.Close()
	c := &RocketMQCluster{Version: s.Version, NameServer: ns, Dir: os.Getenv(s.EnvPrefix + "_DIR"),
		script: os.Getenv(RocketMQServerScript)}
	if c.Dir != "" {
		env, err := readEnvFile(filepath.Join(c.Dir, "rocketmq.env"))
		if err != nil {
			s.unavailable(t, err)
		}
		c.Brokers = splitList(env["ROCKETMQ_BROKERS"])
		c.BrokerNames = splitList(env["ROCKETMQ_BROKER_NAMES"])
	}
	lockDir := c.Dir
	if lockDir == "" {
		lockDir = os.TempDir()
	}
	lockPath := filepath.Join(lockDir, "reliamq-test-"+strings.NewReplacer(":", "_", ".", "_").Replace(ns)+".lock")
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("%s: lock file: %v", s.Name, err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		_ = f.Close()
		t.Fatalf("%s: lock: %v", s.Name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	})
	return c
}

func (s RocketMQServer) unavailable(t testing.TB, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required under CI but unavailable: %v", s.Name, err)
	}
	t.Skipf("%s unavailable (set %s_NAMESRV and %s_DIR, see DEVELOPERS.md): %v", s.Name, s.EnvPrefix, s.EnvPrefix, err)
}

// KillBroker SIGKILLs broker i (0 = broker-a) and returns once the name
// server has dropped it.
func (c *RocketMQCluster) KillBroker(t testing.TB, i int) { t.Helper(); c.run(t, "kill-broker", i) }

// StopBroker stops broker i gracefully (it unregisters itself).
func (c *RocketMQCluster) StopBroker(t testing.TB, i int) { t.Helper(); c.run(t, "stop-broker", i) }

// StartBroker starts broker i again on its store and returns once it is
// registered with the name server. A failed start is tried once more: on a
// loaded machine the kit can take a JVM that is still starting for one that
// exited.
func (c *RocketMQCluster) StartBroker(t testing.TB, i int) {
	t.Helper()
	c.runTwice(t, "start-broker", fmt.Sprint(i), "--dir", c.Dir)
}

// EnsureRunning starts any broker of the cluster that is down (after a test
// that failed half way); register it with t.Cleanup in tests that stop
// brokers. Like StartBroker it tries a failed start once more.
func (c *RocketMQCluster) EnsureRunning(t testing.TB) {
	t.Helper()
	c.runTwice(t, "start", "--dir", c.Dir)
}

// runTwice runs the kit with args and, if that fails, once more; it fails
// the test when the second run fails too.
func (c *RocketMQCluster) runTwice(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(c.script, args...).CombinedOutput()
	if err == nil {
		return
	}
	t.Logf("rocketmq-server %s: %v (trying once more)\n%s", strings.Join(args, " "), err, out)
	if out, err = exec.Command(c.script, args...).CombinedOutput(); err != nil {
		t.Fatalf("rocketmq-server %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Admin runs the kit's mqadmin with args (e.g. "updateTopic", "-c",
// "DefaultCluster", "-t", topic) and returns its output.
func (c *RocketMQCluster) Admin(t testing.TB, args ...string) string {
	t.Helper()
	if c.script == "" || c.Dir == "" {
		t.Fatalf("mqadmin needs %s and the cluster's _DIR", RocketMQServerScript)
	}
	out, err := exec.Command(c.script, append([]string{"mqadmin", "--dir", c.Dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mqadmin %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (c *RocketMQCluster) run(t testing.TB, cmd string, i int) {
	t.Helper()
	out, err := exec.Command(c.script, cmd, fmt.Sprint(i), "--dir", c.Dir).CombinedOutput()
	if err != nil {
		t.Fatalf("rocketmq-server %s %d --dir %s: %v\n%s", cmd, i, c.Dir, err, out)
	}
}

func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
