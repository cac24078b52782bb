package main

import (
	"fmt"
	"regexp"
	"strconv"
)

var (
	reH2Finished = regexp.MustCompile(`(?m)^finished in [0-9.]+\w+, ([0-9.]+) req/s`)
	reH2Requests = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	reH2Status   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	reH2Time     = regexp.MustCompile(`(?m)^time for request:\s+([0-9.]+)(us|ms|s|m|h)\s+([0-9.]+)(us|ms|s|m|h)\s+([0-9.]+)(us|ms|s|m|h)\s+([0-9.]+)(us|ms|s|m|h)`)
)

// parseH2load reads the output of h2load: requests per second over the
// measured duration, the requests that succeeded (2xx and 3xx count as
// success, as with wrk), those with another status or none, and the mean,
// standard deviation and maximum of the request times, which is all the
// latency it prints.
func parseH2load(out string) (loadResult, error) {
	r := loadResult{Raw: out}
	m := reH2Finished.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no \"finished in\" line in h2load output:\n%s", out)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	rq := reH2Requests.FindStringSubmatch(out)
	st := reH2Status.FindStringSubmatch(out)
	tm := reH2Time.FindStringSubmatch(out)
	if rq == nil || st == nil || tm == nil {
		return r, fmt.Errorf("h2load output lacks the requests, status codes or request time line:\n%s", out)
	}
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	ok := n(st[1]) + n(st[2])
	r.Requests = ok + n(st[3]) + n(st[4])
	r.Non2xx3xx = n(st[3]) + n(st[4])
	// "failed" counts every request that did not succeed, those answered
	// with 4xx or 5xx too; the rest ended without a response ("errored" is
	// a part of them).
	r.Errors = [4]int64{0, max(n(rq[5])-r.Non2xx3xx, 0), 0, n(rq[7])}
	var err error
	if r.Max, err = parseTime(tm[3], tm[4]); err == nil {
		if r.Mean, err = parseTime(tm[5], tm[6]); err == nil {
			r.SD, err = parseTime(tm[7], tm[8])
		}
	}
	if err != nil {
		return r, fmt.Errorf("h2load request times %q: %w", tm[0], err)
	}
	return r, nil
}
