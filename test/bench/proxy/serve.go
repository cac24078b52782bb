package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// serveMain is `bench-proxy serve`: the proxy engine run in this process,
// as cmd/gatehouse-proxy runs it from --table and --key-pairs (metrics
// registered, logs at warn, no access log), with a CPU profile written
// when it stops. The benchmark uses it instead of bin/gatehouse-proxy when
// -cpuprofile is set.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	table := fs.String("table", "", "route table file (protojson)")
	admin := fs.String("admin-address", "127.0.0.1:0", "address of /readyz")
	bind := fs.String("bind-address", "127.0.0.1", "IP address listeners bind to")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	tlsCert := fs.String("tls-cert", "", "PEM certificate chain of the key pair HTTPS listeners name")
	tlsKey := fs.String("tls-key", "", "PEM private key of that key pair")
	tlsName := fs.String("tls-name", "", "the name HTTPS listeners give that key pair")
	_ = fs.Parse(args)

	data, err := os.ReadFile(*table)
	if err != nil {
		return err
	}
	t := &routetable.RouteTable{}
	if err := protojson.Unmarshal(data, t); err != nil {
		return fmt.Errorf("%s: %w", *table, err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := proxy.New(proxy.Options{BindAddress: *bind, Log: log, Registry: prometheus.NewRegistry(), DrainTimeout: 2 * time.Second})

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	var keyPairs map[string]*routetable.KeyPair
	if *tlsName != "" {
		cert, certErr := os.ReadFile(*tlsCert)
		key, keyErr := os.ReadFile(*tlsKey)
		if err := errors.Join(certErr, keyErr); err != nil {
			return err
		}
		keyPairs = map[string]*routetable.KeyPair{*tlsName: {Name: *tlsName, CertificateChain: cert, PrivateKey: key}}
	}
	if err := p.Apply("bench", []*routetable.RouteTable{t}, keyPairs); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !p.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: *admin, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server", "error", err)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return p.Close(sctx)
}
