package servicetest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadEnvFile_reads_the_kit_lines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rocketmq.env")
	body := "ROCKETMQ_NAMESRV=127.0.0.1:9876\nROCKETMQ_BROKERS=127.0.0.1:10911,127.0.0.1:10921\nnoise\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	env, err := readEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := splitList(env["ROCKETMQ_BROKERS"]); !reflect.DeepEqual(got, []string{"127.0.0.1:10911", "127.0.0.1:10921"}) {
		t.Fatalf("brokers = %v", got)
	}
	if env["ROCKETMQ_NAMESRV"] != "127.0.0.1:9876" || len(env) != 2 {
		t.Fatalf("env = %v", env)
	}
}

func TestRocketMQServer_skips_when_its_variables_are_unset(t *testing.T) {
	if InCI() {
		t.Skip("under CI an unset cluster fails the test instead")
	}
	s := RocketMQServer{Name: "nowhere", EnvPrefix: "RELIAMQ_TEST_UNSET_CLUSTER"}
	ok := t.Run("inner", func(t *testing.T) { s.Cluster(t); t.Error("Cluster returned for an unset cluster") })
	if !ok {
		t.Fatal("inner test failed instead of skipping")
	}
}
