package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry returns the demo's registry: the Go runtime's go_* and the
// process's process_* metrics, to which metrics.New adds reliamq_*.
func newRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// Scrape is one scrape of /metrics: the value of every series, keyed by the
// series as written ("name{label=\"v\"}").
type Scrape map[string]float64

// scrapeMetrics GETs url and parses the Prometheus text format.
func scrapeMetrics(url string) (Scrape, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (Scrape, error) {
	out := Scrape{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("bad metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("bad metrics line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// Sum adds the series of metric name whose labels contain every one of
// labels (each written as key="value").
func (s Scrape) Sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range s {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(series, l) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// lines returns the series of the given metric names, sorted, for printing.
func (s Scrape) lines(names ...string) []string {
	var out []string
	for series, v := range s {
		for _, n := range names {
			if series == n || strings.HasPrefix(series, n+"{") {
				out = append(out, fmt.Sprintf("%s %g", series, v))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
