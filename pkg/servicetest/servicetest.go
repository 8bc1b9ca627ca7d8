// Package servicetest gives tests the address of a real local service
// (PostgreSQL, MariaDB, Redis, RabbitMQ, NATS) and decides what happens when the
// service is unreachable: the test is skipped on a developer machine, and fails
// when the CI environment variable is set, so CI can never pass by skipping.
//
// Each address comes from an environment variable with a 127.0.0.1 default:
//
//	RELIAMQ_POSTGRES_DSN  postgres://root@127.0.0.1:5432/test?sslmode=disable
//	RELIAMQ_MYSQL_DSN     root@tcp(127.0.0.1:3306)/test?parseTime=true
//	RELIAMQ_REDIS_ADDR    127.0.0.1:6379
//	RELIAMQ_AMQP_URI      amqp://guest:guest@127.0.0.1:5672/
//	RELIAMQ_NATS_URL      nats://127.0.0.1:4222
//
// Real RocketMQ clusters (RocketMQ494, RocketMQ520 in rocketmq.go) have no
// default: their name server and kit directory come from
// RELIAMQ_ROCKETMQ494_NAMESRV/_DIR and RELIAMQ_ROCKETMQ520_NAMESRV/_DIR, the
// kit script from RELIAMQ_ROCKETMQ_SERVER, all set by .ci/run.
package servicetest

import (
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Service describes one external service a test may need.
type Service struct {
	Name       string // human name, used in skip/fail messages
	EnvVar     string // variable that overrides the address
	Default    string // address used when EnvVar is unset
	dialTarget func(addr string) string
}

// The services reliamq tests against.
var (
	Postgres = Service{Name: "PostgreSQL", EnvVar: "RELIAMQ_POSTGRES_DSN",
		Default: "postgres://root@127.0.0.1:5432/test?sslmode=disable", dialTarget: hostFromURL("5432")}
	MySQL = Service{Name: "MariaDB/MySQL", EnvVar: "RELIAMQ_MYSQL_DSN",
		Default: "root@tcp(127.0.0.1:3306)/test?parseTime=true", dialTarget: hostFromMySQLDSN}
	Redis = Service{Name: "Redis", EnvVar: "RELIAMQ_REDIS_ADDR",
		Default: "127.0.0.1:6379", dialTarget: func(a string) string { return a }}
	AMQP = Service{Name: "RabbitMQ", EnvVar: "RELIAMQ_AMQP_URI",
		Default: "amqp://guest:guest@127.0.0.1:5672/", dialTarget: hostFromURL("5672")}
	NATS = Service{Name: "NATS", EnvVar: "RELIAMQ_NATS_URL",
		Default: "nats://127.0.0.1:4222", dialTarget: hostFromURL("4222")}
)

// Addr returns the service's address (DSN, URL or host:port). When the service
// does not accept TCP connections it skips the test, or fails it under CI.
func (s Service) Addr(t testing.TB) string {
	t.Helper()
	addr := s.addr()
	target := s.dialTarget(addr)
	conn, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		if InCI() {
			t.Fatalf("%s is required under CI but unreachable at %s (%s): %v", s.Name, target, s.EnvVar, err)
		}
		t.Skipf("%s unreachable at %s (set %s): %v", s.Name, target, s.EnvVar, err)
	}
	_ = conn.Close()
	return addr
}

func (s Service) addr() string {
	if v := os.Getenv(s.EnvVar); v != "" {
		return v
	}
	return s.Default
}

// InCI reports whether the CI environment variable is set.
func InCI() bool { return os.Getenv("CI") != "" }

func hostFromURL(defPort string) func(string) string {
	return func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return raw
		}
		if u.Port() == "" {
			return net.JoinHostPort(u.Hostname(), defPort)
		}
		return u.Host
	}
}

func hostFromMySQLDSN(dsn string) string {
	// user:pass@tcp(host:port)/db?params
	if i := strings.Index(dsn, "tcp("); i >= 0 {
		rest := dsn[i+4:]
		if j := strings.IndexByte(rest, ')'); j >= 0 {
			return rest[:j]
		}
	}
	return "127.0.0.1:3306"
}
