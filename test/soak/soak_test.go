// Package soak runs the hub and a proxy under route churn for SOAK_TIME
// and checks that neither grows: whatever either keeps per route, per
// listener, per Gateway, per key pair or per proxy stream must leave with
// its subject. Skipped unless SOAK_TIME is set (make soak SOAK_TIME=30m).
package soak

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

func TestMain(m *testing.M) {
	if os.Getenv("SOAK_TIME") != "" {
		env.EnterTestNetwork()
	}
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// Growth allowed between the early and the late samples, after a settle:
// both processes run with GOGC=10, so the heap in use a few seconds after
// a collection is the live heap within about a tenth. The late median may
// exceed the early one by a quarter (the live set moves with how many
// churned routes, listeners and Gateways exist at the moment of the
// sample, and with the size of the last table pushed) plus a constant for
// the runtime's own movement (a few MiB between samples on an idle hub).
// A leak of 1 KiB per change over a 30-minute run (some 5,000 changes)
// is 5 MiB on top of that, and the series shows its slope.
const (
	heapGrowth = 0.25
	heapSlack  = 4 << 20
	// RSS follows the heap down only as the runtime returns pages, in its
	// own time: a looser bound.
	rssGrowth = 0.25
	rssSlack  = 12 << 20
)

const (
	stableHost = "shop.apps.example.test"
	answer     = "shop-1"
)

func TestSoak(t *testing.T) {
	soak, err := time.ParseDuration(os.Getenv("SOAK_TIME"))
	if err != nil || soak <= 0 {
		t.Skip("set SOAK_TIME (e.g. 30m) to run the soak test: make soak SOAK_TIME=30m")
	}
	// A sample a minute, or twelve over a shorter run.
	every := min(time.Minute, max(10*time.Second, soak/12))
	ctx, cancel := context.WithTimeout(context.Background(), soak+10*time.Minute)
	defer cancel()
	// Collect often: the heap in use follows what the processes hold, not
	// when they last collected.
	t.Setenv("GOGC", "10")
	bins := build(t, "gatehouse", "gatehouse-proxy")

	fleet, err := env.Start(ctx, env.Options{Members: 1, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	hubMetrics, proxyAdmin := freeAddr(t), freeAddr(t)
	xdsAddr := freeAddr(t)
	hub := start(t, "hub", bins["gatehouse"], "--kubeconfig", fleet.Hub.KubeconfigPath, "--xds-address", xdsAddr,
		"--metrics-address", hubMetrics, "--health-address", "0", "--webhook-address", "0", "--debounce", "20ms", "--startup-grace", "5s")
	caFile, err := env.PushCABundle(ctx, fleet.Hub, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{{Namespace: "shop", Hostname: stableHost, Answer: answer}},
		env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: xdsAddr, CAFile: caFile, CacheDir: t.TempDir(), Log: quiet{}, Admin: proxyAdmin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	waitFor(t, 60*time.Second, "the stable route served", func() bool { got, _ := g.Get(stableHost); return got == answer })

	c := &churn{t: t, ctx: ctx, g: g}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.run(stop) })
	wg.Go(func() { c.traffic(stop) })

	procs := []proc{{"hub", hub.PID(), hubMetrics}, {"proxy", g.Proxy.PID(), proxyAdmin}}
	var samples []sample
	deadline := time.Now().Add(soak)
	for next := time.Now().Add(every); ; next = next.Add(every) {
		if !sleepUntil(ctx, next) {
			t.Fatal("the soak ran out of time")
		}
		samples = append(samples, c.sample(procs, soak-time.Until(deadline)))
		if !time.Now().Before(deadline) {
			break
		}
	}
	close(stop)
	wg.Wait()

	report(t, samples, c)
	if c.failed.Load() > 0 {
		t.Errorf("%d churn steps failed (first: %v)", c.failed.Load(), c.firstErr.Load())
	}
	if len(samples) < 4 {
		t.Fatalf("%d samples; the soak needs at least 4 to compare early and late", len(samples))
	}
	third := max(1, len(samples)/3)
	early, late := samples[:third], samples[len(samples)-third:]
	for i, p := range procs {
		check(t, p.name+" heap in use", median(early, i, heap), median(late, i, heap), heapGrowth, heapSlack)
		check(t, p.name+" RSS", median(early, i, rss), median(late, i, rss), rssGrowth, rssSlack)
	}
	// A few status classes for each route alive (the churned ones, the
	// stable one, and the one being created).
	if series, bound := late[len(late)-1].routeSeries, int64(4*(liveRoutes+2)); series > bound {
		t.Errorf("the proxy exports %d per-route series with at most %d routes alive (bound %d): series of deleted routes stay", series, liveRoutes+2, bound)
	}
	if names, err := metricSeries(proxyAdmin, "gatehouse_proxy_route_requests_total"); err == nil {
		t.Logf("the proxy's per-route series at the end:\n%s", strings.Join(names, "\n"))
	}
}

type proc struct {
	name    string
	pid     int
	metrics string
}

type sample struct {
	at                       time.Duration
	rss, heap                [2]int64
	routeSeries              int64
	changes, requests, fails int64
}

const (
	rss = iota
	heap
)

func (s sample) value(i, kind int) int64 {
	if kind == rss {
		return s.rss[i]
	}
	return s.heap[i]
}

func median(ss []sample, i, kind int) int64 {
	v := make([]int64, len(ss))
	for j, s := range ss {
		v[j] = s.value(i, kind)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func check(t *testing.T, what string, early, late int64, growth float64, slack int64) {
	t.Helper()
	bound := early + int64(float64(early)*growth) + slack
	t.Logf("%s: early median %.1f MiB, late median %.1f MiB, bound %.1f MiB", what, mib(early), mib(late), mib(bound))
	if late > bound {
		t.Errorf("%s grew from %.1f MiB to %.1f MiB under churn, over the bound of %.1f MiB (+%.0f%% +%.0f MiB): something kept grows with the churn",
			what, mib(early), mib(late), mib(bound), growth*100, mib(slack))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func report(t *testing.T, samples []sample, c *churn) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%8s %10s %10s %10s %10s %8s %8s %9s\n", "t", "hub RSS", "hub heap", "proxy RSS", "proxy heap", "series", "changes", "requests")
	for _, s := range samples {
		fmt.Fprintf(&b, "%8s %9.1fM %9.1fM %9.1fM %9.1fM %8d %8d %9d\n", s.at.Round(time.Second), mib(s.rss[0]), mib(s.heap[0]),
			mib(s.rss[1]), mib(s.heap[1]), s.routeSeries, s.changes, s.requests)
	}
	fmt.Fprintf(&b, "routes created, updated and deleted: %d; listener certificates replaced: %d; Gateways created and deleted: %d; requests: %d (%d failed)",
		c.routes.Load(), c.certs.Load(), c.gateways.Load(), c.requests.Load(), c.requestFails.Load())
	t.Log(b.String())
}

// sample reads each process's RSS and its heap in use, the least over a
// few seconds (a pass's garbage comes and goes).
func (c *churn) sample(procs []proc, at time.Duration) sample {
	s := sample{at: at, changes: c.routes.Load()*3 + c.certs.Load() + c.gateways.Load()*2, requests: c.requests.Load()}
	for i, p := range procs {
		s.rss[i] = vmRSS(c.t, p.pid)
		least := int64(-1)
		for range 6 {
			if v, err := metricValue(p.metrics, "go_memstats_heap_inuse_bytes"); err == nil && (least < 0 || v < least) {
				least = v
			}
			time.Sleep(500 * time.Millisecond)
		}
		s.heap[i] = least
	}
	s.routeSeries, _ = metricCount(procs[1].metrics, "gatehouse_proxy_route_requests_total")
	return s
}

// liveRoutes is how many churned routes exist at once beside the stable one.
const liveRoutes = 10

// churn creates, updates and deletes HTTPRoutes one after the other, with
// at most liveRoutes alive; every tenth route it replaces the Gateway's
// HTTPS listener and its certificate Secret, and every twenty-fifth it
// creates a second Gateway and deletes the one before.
type churn struct {
	t   *testing.T
	ctx context.Context
	g   *env.SharedGateway

	routes, certs, gateways atomic.Int64
	requests, requestFails  atomic.Int64
	failed                  atomic.Int64
	firstErr                atomic.Value
	live                    sync.Map // host → true while served
}

func (c *churn) fail(err error) {
	if c.failed.Add(1) == 1 {
		c.firstErr.Store(err)
	}
	c.t.Logf("churn: %v", err)
}

func (c *churn) run(stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if err := c.route(i); err != nil {
			c.fail(err)
		}
		if i%10 == 0 {
			if err := c.certificate(i); err != nil {
				c.fail(err)
			}
		}
		if i%25 == 0 {
			if err := c.gateway(i); err != nil {
				c.fail(err)
			}
		}
	}
}

// route creates route i, waits until the proxy serves it, changes its
// hostname, waits again, and deletes route i-liveRoutes.
func (c *churn) route(i int) error {
	host := fmt.Sprintf("churn-%d.apps.example.test", i)
	r := env.TenantRoute("shop", fmt.Sprintf("churn-%d", i), host)
	if err := c.g.Client.Create(c.ctx, r); err != nil {
		return fmt.Errorf("creating route %s: %w", r.Name, err)
	}
	if err := c.served(host); err != nil {
		return err
	}
	moved := fmt.Sprintf("churn-%d-b.apps.example.test", i)
	if err := c.update(r, func() { r.Spec.Hostnames = []gwv1.Hostname{gwv1.Hostname(moved)} }); err != nil {
		return fmt.Errorf("updating route %s: %w", r.Name, err)
	}
	if err := c.served(moved); err != nil {
		return err
	}
	c.live.Store(moved, true)
	if old := i - liveRoutes; old >= 0 {
		c.live.Delete(fmt.Sprintf("churn-%d-b.apps.example.test", old))
		gone := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("churn-%d", old)}}
		if err := c.g.Client.Delete(c.ctx, gone); err != nil {
			return fmt.Errorf("deleting route %s: %w", gone.Name, err)
		}
	}
	c.routes.Add(1)
	return nil
}

// update reads obj, changes it and writes it, again when the hub's status
// write came in between.
func (c *churn) update(obj client.Object, change func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.g.Client.Get(c.ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return c.g.Client.Update(c.ctx, obj)
	})
}

func (c *churn) served(host string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := c.g.Get(host)
		if got == answer {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not served 20s after the change: %v", host, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// certificate gives the shared Gateway an HTTPS listener whose key pair is
// a new Secret, and deletes the Secret before: a key pair replaced.
func (c *churn) certificate(i int) error {
	name := fmt.Sprintf("tls-%d", i)
	certPEM, keyPEM, err := selfSigned("*.apps.example.test")
	if err != nil {
		return err
	}
	if err := c.g.Client.Create(c.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: env.GatewayNamespace, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}); err != nil {
		return fmt.Errorf("creating Secret %s: %w", name, err)
	}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: env.GatewayNamespace, Name: env.GatewayName}}
	all := gwv1.NamespacesFromAll
	https := gwv1.Listener{Name: "https", Port: 8443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.apps.example.test"),
		AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}},
		TLS:           &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: gwv1.ObjectName(name)}}}}
	if err := c.update(gw, func() {
		gw.Spec.Listeners = append(slices.DeleteFunc(gw.Spec.Listeners, func(l gwv1.Listener) bool { return l.Name == "https" }), https)
	}); err != nil {
		return fmt.Errorf("updating the Gateway's HTTPS listener: %w", err)
	}
	if i >= 10 {
		old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: env.GatewayNamespace, Name: fmt.Sprintf("tls-%d", i-10)}}
		if err := client.IgnoreNotFound(c.g.Client.Delete(c.ctx, old)); err != nil {
			return fmt.Errorf("deleting Secret %s: %w", old.Name, err)
		}
	}
	c.certs.Add(1)
	return nil
}

// gateway creates a Gateway no proxy serves and deletes the one before:
// its table is published and withdrawn.
func (c *churn) gateway(i int) error {
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: env.GatewayNamespace, Name: fmt.Sprintf("extra-%d", i)},
		Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse", Listeners: []gwv1.Listener{{Name: "http", Port: 9080, Protocol: gwv1.HTTPProtocolType}}}}
	if err := c.g.Client.Create(c.ctx, gw); err != nil {
		return fmt.Errorf("creating Gateway %s: %w", gw.Name, err)
	}
	if i >= 25 {
		old := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: env.GatewayNamespace, Name: fmt.Sprintf("extra-%d", i-25)}}
		if err := client.IgnoreNotFound(c.g.Client.Delete(c.ctx, old)); err != nil {
			return fmt.Errorf("deleting Gateway %s: %w", old.Name, err)
		}
	}
	c.gateways.Add(1)
	return nil
}

// traffic sends requests through the proxy, to the stable route and the
// churned routes alive, in a bounded loop.
func (c *churn) traffic(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		hosts := []string{stableHost}
		c.live.Range(func(k, _ any) bool { hosts = append(hosts, k.(string)); return true })
		for _, h := range hosts {
			c.requests.Add(1)
			// A churned route may be deleted between the read and the
			// request: only the stable route's failures count.
			if got, _ := c.g.Get(h); got != answer && h == stableHost {
				c.requestFails.Add(1)
			}
		}
	}
}

func vmRSS(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the RSS of process %d: %v", pid, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// metricValue reads an unlabelled series from a /metrics endpoint.
func metricValue(addr, name string) (int64, error) {
	var v int64
	found := false
	err := scanMetrics(addr, func(series, value string) {
		if series == name {
			f, _ := strconv.ParseFloat(value, 64)
			v, found = int64(f), true
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("%s has no %s", addr, name)
	}
	return v, err
}

// metricCount counts the series of a metric.
func metricCount(addr, name string) (int64, error) {
	names, err := metricSeries(addr, name)
	return int64(len(names)), err
}

// metricSeries lists the series of a metric.
func metricSeries(addr, name string) ([]string, error) {
	var out []string
	err := scanMetrics(addr, func(series, _ string) {
		if strings.HasPrefix(series, name+"{") {
			out = append(out, series)
		}
	})
	return out, err
}

func scanMetrics(addr string, each func(series, value string)) error {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			each(line[:i], line[i+1:])
		}
	}
	return s.Err()
}

func selfSigned(dnsName string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
}

func build(t *testing.T, cmds ...string) map[string]string {
	t.Helper()
	out, err := env.BuildCommands(t.TempDir(), cmds...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func start(t *testing.T, name, bin string, args ...string) *env.Process {
	t.Helper()
	p, err := env.StartProcess(name, bin, args, quiet{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	return p
}

// quiet drops the processes' logs: over half an hour of churn they are
// the largest thing the test would hold.
type quiet struct{}

func (quiet) Write(p []byte) (int, error) { return len(p), nil }

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(at)):
		return true
	}
}
