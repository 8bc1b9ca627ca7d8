package rocketmq

import (
	"context"
	"sort"
)

// TopicMasters returns the broker names whose master is in topic's route,
// sorted (tests of the failover wait for a route to list every broker).
func TopicMasters(ctx context.Context, nameServers []string, topic string) ([]string, error) {
	ns := newNameServerConn(nameServers)
	defer ns.close()
	r, err := ns.route(ctx, topic)
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range r.Masters {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// FirstMaster returns the master address that sorts first among those the
// name servers know (benchmarks put their topic on one broker).
func FirstMaster(ctx context.Context, nameServers []string) (string, error) {
	addrs, err := clusterMasters(ctx, nameServers)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}
