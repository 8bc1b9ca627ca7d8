package rocketmq

import (
	"context"
	"testing"
	"time"

	"github.com/reliamq/reliamq/pkg/servicetest"
)

// The real brokers say in their configuration (GET_BROKER_CONFIG) whether
// they create topics on first send, which is what tells a topic that cannot
// be created from a broker whose routes are not registered yet. The test
// clusters run with autoCreateTopicEnable=true.
func TestBrokerConfig_of_the_real_brokers_tells_that_they_create_topics(t *testing.T) {
	for _, srv := range []servicetest.RocketMQServer{servicetest.RocketMQ494, servicetest.RocketMQ520} {
		t.Run(srv.Version, func(t *testing.T) {
			c := srv.Cluster(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			masters := registeredMasters(ctx, []string{c.NameServer})
			if len(masters) != len(c.Brokers) {
				t.Fatalf("name server lists masters %v, want %d", masters, len(c.Brokers))
			}
			for _, addr := range masters {
				info, err := readBrokerConfig(ctx, addr)
				if err != nil {
					t.Fatalf("GET_BROKER_CONFIG from %s: %v", addr, err)
				}
				if !info.createsTopics {
					t.Errorf("broker %s: autoCreateTopicEnable not read as true", addr)
				}
				if len(info.levels) != 18 {
					t.Errorf("broker %s: %d delay levels read, want 18", addr, len(info.levels))
				}
			}
		})
	}
}
