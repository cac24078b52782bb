// Command gatehouse-proxy serves the route tables of the Gateways it is
// assigned. Tables come from the hub over xDS (--xds-address), or from files
// (--table) for tests, benchmarks and a proxy without a hub.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/internal/jsonlog"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var (
		tables, gateways listFlag
		keyPairs         = flag.String("key-pairs", "", "with --table: directory of the key pairs HTTPS listeners name; each directory under it holding tls.crt and tls.key (a kubernetes.io/tls Secret mounted as a volume) is the key pair named by its path, e.g. DIR/infra/web-cert is \"infra/web-cert\"")
		xdsAddr          = flag.String("xds-address", "", "host:port of the hub's push server")
		cluster          = flag.String("cluster", "", "the member cluster this proxy serves, part of its node identity")
		cacheDir         = flag.String("cache-dir", "", "keep the last applied tables here and serve them at start, before the hub answers")
		tokenFile        = flag.String("token-file", "", "file with the bearer token presented to the hub: a projected ServiceAccount token with audience gatehouse, re-read on every connection")
		caFile           = flag.String("xds-ca-file", "", "PEM CA bundle that signs the hub's push server certificate (required with --xds-address; re-read on every connection)")
		serverName       = flag.String("xds-server-name", "", "name the hub's certificate must carry (default: the host of --xds-address)")
		bind             = flag.String("bind-address", "", "IP address listeners bind to (default: all)")
		advertise        = flag.String("advertise-address", "", "comma-separated addresses clients reach this proxy at, reported to the hub as the Gateway's addresses when its class lists none")
		admin            = flag.String("admin-address", "127.0.0.1:9901", "address of /metrics, /healthz and /readyz")
		accessLog        = flag.Bool("access-log", false, "log every request")
		fastPath         = flag.Bool("http1-fast-path", true, "serve plain HTTP/1.1 forwarding without net/http (zero allocations per request); false serves every request through net/http")
		logLevel         = flag.String("log-level", "info", "debug, info, warn or error")
		drainDelay       = flag.Duration("drain-delay", 5*time.Second, "on SIGTERM or SIGINT: how long /readyz fails while the listeners keep serving (every response asking its client to reconnect elsewhere), so that endpoints and load balancers stop sending traffic before the listeners close")
		drain            = flag.Duration("drain-timeout", 45*time.Second, "after the drain delay, or when a listener goes: how long requests and upgraded connections in flight may take to finish before they are cut")
		gcPercent        = flag.Int("gc-percent", 400, "garbage collector target (GOGC); the request path allocates short-lived objects, so a larger heap costs little and saves CPU")
	)
	flag.Var(&tables, "table", "route table file (protojson), instead of the hub; repeatable")
	flag.Var(&gateways, "gateway", "NAMESPACE/NAME of a Gateway to serve; repeatable")
	flag.Var(version.Flag("gatehouse-proxy"), "version", "print the version and exit")
	flag.Parse()

	// Every logger in the process, gRPC's too, writes these JSON lines.
	log := jsonlog.New(os.Stderr, parseLevel(*logLevel))
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	if err := run(log, options{
		tables: tables, keyPairs: *keyPairs, gateways: gateways, xdsAddr: *xdsAddr, cluster: *cluster, cacheDir: *cacheDir,
		tokenFile: *tokenFile, caFile: *caFile, serverName: *serverName, bind: *bind, admin: *admin, accessLog: *accessLog, drain: *drain,
		advertise: splitList(*advertise), drainDelay: *drainDelay, noFastPath: !*fastPath,
	}); err != nil {
		log.Error("gatehouse-proxy stopped", "error", err)
		os.Exit(1)
	}
}

type options struct {
	tables, gateways    []string
	keyPairs            string
	xdsAddr, cluster    string
	cacheDir, tokenFile string
	caFile, serverName  string
	bind, admin         string
	advertise           []string
	accessLog           bool
	noFastPath          bool
	drain, drainDelay   time.Duration
}

func run(log *slog.Logger, o options) error {
	if len(o.tables) == 0 && o.xdsAddr == "" {
		return errors.New("give --table files or --xds-address with --cluster and --gateway")
	}
	if o.keyPairs != "" && len(o.tables) == 0 {
		return errors.New("--key-pairs serves the HTTPS listeners of --table files; with --xds-address the hub sends key pairs: drop --key-pairs")
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	// The push stream stays up until the drain is over: the hub keeps
	// hearing what this proxy serves while it still serves.
	ctx, stopPush := context.WithCancel(context.Background())
	defer stopPush()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.Collector())
	popts := proxy.Options{BindAddress: o.bind, Log: log, Registry: reg, DrainTimeout: o.drain, NoFastPath: o.noFastPath}
	if o.accessLog {
		popts.AccessLog = log
	}
	p := proxy.New(popts)
	go serveAdmin(log, o.admin, reg, p)

	if len(o.tables) > 0 {
		ts, err := readTables(o.tables)
		if err != nil {
			return err
		}
		kps, err := readKeyPairs(o.keyPairs)
		if err != nil {
			return err
		}
		if err := p.Apply("file", ts, kps); err != nil {
			return err
		}
	} else {
		if o.cluster == "" || len(o.gateways) == 0 {
			return errors.New("--xds-address needs --cluster and at least one --gateway")
		}
		if o.caFile == "" {
			return errors.New("--xds-address needs --xds-ca-file: the push channel is always TLS, verified against the hub's CA bundle")
		}
		names := make([]string, len(o.gateways))
		for i, g := range o.gateways {
			names[i] = o.cluster + "/" + g
		}
		client := &xds.Client{
			Address: o.xdsAddr, NodeID: names[0], Tables: names, CacheDir: o.cacheDir,
			TokenFile: o.tokenFile, CAFile: o.caFile, ServerName: o.serverName, Apply: p.Apply, Log: log, Registry: reg, Addresses: o.advertise,
			NotServed: p.NotServed, NotServedChanged: p.NotServedChanged(), RoutesNotServed: p.RoutesNotServed,
		}
		go client.Run(ctx)
	}

	sig := <-signals
	log.Info("signal received: draining; a second SIGTERM or SIGINT cuts the drain short", "signal", sig.String())
	return p.Drain(secondSignal(log, signals), o.drainDelay, o.drain)
}

// secondSignal is a context that ends on the next signal: whoever sends it
// wants the process gone now, so the drain closes what is left at once.
func secondSignal(log *slog.Logger, signals <-chan os.Signal) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		sig := <-signals
		log.Warn("second signal: cutting the drain short, closing every connection now", "signal", sig.String())
		cancel()
	}()
	return ctx
}

func readTables(files []string) ([]*routetable.RouteTable, error) {
	var out []*routetable.RouteTable
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		t := &routetable.RouteTable{}
		if err := protojson.Unmarshal(data, t); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// readKeyPairs reads every directory under dir that holds tls.crt and
// tls.key, named by its path below dir. Kubernetes' own entries of a
// mounted Secret ("..data", "..2026_…") are skipped: tls.crt and tls.key
// beside them already point into them.
func readKeyPairs(dir string) (map[string]*routetable.KeyPair, error) {
	if dir == "" {
		return nil, nil
	}
	out := map[string]*routetable.KeyPair{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("--key-pairs: %w", err)
		}
		if !e.IsDir() {
			return nil
		}
		if strings.HasPrefix(e.Name(), "..") {
			return fs.SkipDir
		}
		cert, certErr := os.ReadFile(filepath.Join(path, "tls.crt"))
		key, keyErr := os.ReadFile(filepath.Join(path, "tls.key"))
		if errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) {
			return nil
		}
		if err := errors.Join(certErr, keyErr); err != nil {
			return fmt.Errorf("--key-pairs: a key pair directory needs both tls.crt and tls.key: %w", err)
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			return fmt.Errorf("--key-pairs: %s itself holds tls.crt: put each key pair in a directory under it, named as the table's listeners name it", dir)
		}
		name := filepath.ToSlash(rel)
		out[name] = &routetable.KeyPair{Name: name, CertificateChain: cert, PrivateKey: key}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--key-pairs: no directory under %s holds tls.crt and tls.key", dir)
	}
	return out, nil
}

func serveAdmin(log *slog.Logger, addr string, reg *prometheus.Registry, p *proxy.Proxy) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if p.Draining() {
			http.Error(w, "draining: this proxy is shutting down and wants no new traffic", http.StatusServiceUnavailable)
			return
		}
		if !p.Ready() {
			http.Error(w, "no route table applied yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "serving version", p.Version())
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("admin server stopped", "address", addr, "error", err)
	}
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
