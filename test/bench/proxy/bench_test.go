package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

const wrkSample = `Running 10s test @ http://127.0.0.1:18080/svc-10000/item
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  420.11us  12.03ms   91.20%
    Req/Sec    21.07k     1.02k   23.11k    70.00%
  Latency Distribution
     50%    1.43ms
     75%  812.50us
     90%    2.01ms
     99%    1.20s
  209671 requests in 10.00s, 30.19MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 1, timeout 4
Requests/sec:  20966.83
Transfer/sec:      3.02MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 20966.83 {
		t.Errorf("rps %v", r.RPS)
	}
	want := map[int]time.Duration{50: 1430 * time.Microsecond, 75: 812500 * time.Nanosecond, 90: 2010 * time.Microsecond, 99: 1200 * time.Millisecond}
	for p, d := range want {
		if got := r.p(p); got != d {
			t.Errorf("p%d = %v, want %v", p, got, d)
		}
	}
	if r.Requests != 209671 || r.Non2xx3xx != 3 || r.Errors != [4]int64{0, 2, 1, 4} || r.socketErrors() != 7 {
		t.Errorf("counts %d %d %v", r.Requests, r.Non2xx3xx, r.Errors)
	}

	// Without --latency there is no 99% line: an error, not a zero.
	noLatency := strings.Replace(wrkSample, "     99%    1.20s\n", "", 1)
	if _, err := parseWrk(noLatency); err == nil {
		t.Error("missing 99% line accepted")
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("failed run accepted")
	}
}

func TestConfigs(t *testing.T) {
	tbl := routeTable(3, 18080, 18090)
	data, err := protojson.Marshal(tbl)
	if err != nil {
		t.Fatal(err)
	}
	back := &routetable.RouteTable{}
	if err := protojson.Unmarshal(data, back); err != nil {
		t.Fatal(err)
	}
	rs := back.Listeners[0].VirtualHosts[0].Routes
	if len(rs) != 3 || rs[2].Match.GetPrefix() != "/svc-3" || rs[2].Match.Headers[0].GetExact() != "t3" {
		t.Errorf("table: %s", data)
	}
	conf := nginxProxyConfig("/tmp/x", 3, 18081, 18090, 1, nginxModules{})
	for _, s := range []string{"location /svc-3 {", `if ($http_x_tenant != "t3")`, "server 127.0.0.1:18090;", "keepalive 256;", `proxy_set_header Connection "";`, "worker_processes 1;"} {
		if !strings.Contains(conf, s) {
			t.Errorf("nginx config lacks %q:\n%s", s, conf)
		}
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := fmtInt(in); got != want {
			t.Errorf("fmtInt(%d) = %q, want %q", in, got, want)
		}
	}
}
