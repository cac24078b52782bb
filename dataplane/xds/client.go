package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// ApplyFunc serves a version of the tables. It returns only once the version
// is being served, or an error and the previous version keeps serving.
type ApplyFunc func(version string, tables []*routetable.RouteTable, keyPairs map[string]*routetable.KeyPair) error

// Client subscribes a proxy to its tables and the key pairs they name,
// applies what arrives and acknowledges a version only once it is served.
type Client struct {
	Address string
	// NodeID identifies the proxy: "cluster/namespace/gateway".
	NodeID string
	// Tables are the resource names to serve, "cluster/namespace/gateway".
	Tables []string
	// CacheDir, when set, keeps the last applied version on disk.
	CacheDir string
	// TokenFile holds the bearer token presented to the hub, re-read on
	// every connection so that a rotated token is picked up.
	TokenFile string
	// Addresses are advertised to the hub as where this proxy answers.
	Addresses []string
	// Version is reported to the hub as this proxy's build; default: the
	// binary's own (internal/version).
	Version  string
	Apply    ApplyFunc
	Log      *slog.Logger
	Registry prometheus.Registerer
	// CAFile holds the PEM certificates that sign the hub's push server
	// certificate; re-read on every connection so that a rotated bundle is
	// picked up. The channel is always TLS: without a CA the client does
	// not connect.
	CAFile string
	// ServerName is the name the hub's certificate must carry; default: the
	// host of Address.
	ServerName string
	// DialOptions, when set, replace the TLS transport built from CAFile
	// (tests that bring their own credentials).
	DialOptions []grpc.DialOption
	// NotServed, when set, lists the listeners of the applied version that
	// the proxy does not serve (table → listener → why). It travels to the
	// hub as node metadata on every request, so that an acknowledgement
	// says what of the version is served.
	NotServed func() map[string]map[string]string
	// NotServedChanged, when set, signals that NotServed changed between
	// versions (a listener's port bound on a retry): the client tells the
	// hub at once.
	NotServedChanged <-chan struct{}
	// RoutesNotServed, when set, lists the routes of the applied version
	// the proxy left out because they do not compile (table → route object
	// key → why); it travels like NotServed.
	RoutesNotServed func() map[string]map[string]string

	// state of the last applied version and of what arrived since
	tables   map[string]*routetable.RouteTable
	keys     map[string]*routetable.KeyPair
	applied  string
	tableVer string
	keyVer   string
	// tableNonce answers the last table response acknowledged or
	// rejected, for a request that only reports NotServed.
	tableNonce  string
	waiting     *pending
	acks, nacks prometheus.Counter
	decoder     routetable.Decoder
	// encoded are the pushed tables' encodings, for the cache.
	encoded map[*routetable.RouteTable][]byte
}

// pending is a table response that waits for key pairs before it can be
// applied and acknowledged.
type pending struct {
	version, nonce string
}

const cacheFile = "tables.pb"

// Run keeps a stream to the hub open until ctx ends, reconnecting with
// backoff. With a cache directory, the cached version is served first.
func (c *Client) Run(ctx context.Context) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.acks = prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_proxy_xds_acks_total", Help: "Versions acknowledged to the hub."})
	c.nacks = prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_proxy_xds_nacks_total", Help: "Versions rejected to the hub."})
	if c.Registry != nil {
		c.Registry.MustRegister(c.acks, c.nacks)
	}
	c.tables, c.keys = map[string]*routetable.RouteTable{}, map[string]*routetable.KeyPair{}
	c.encoded = map[*routetable.RouteTable][]byte{}
	c.loadCache()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := c.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 30*time.Second {
			backoff = 100 * time.Millisecond
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.Log.Warn("push stream ended; reconnecting", "address", c.Address, "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Client) stream(ctx context.Context) error {
	opts := c.DialOptions
	if opts == nil {
		creds, err := c.transport()
		if err != nil {
			return err
		}
		opts = []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	}
	conn, err := grpc.NewClient(c.Address, opts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.TokenFile != "" {
		token, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return fmt.Errorf("reading the token: %w", err)
		}
		sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+strings.TrimSpace(string(token)))
	}
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		return err
	}
	c.tableNonce = ""
	// Resuming: tell the hub what we serve so it resends only what changed.
	if err := c.send(s, &discovery.DiscoveryRequest{TypeUrl: TableType, ResourceNames: c.Tables, VersionInfo: c.tableVer}); err != nil {
		return err
	}
	if names := c.keyNames(); len(names) > 0 {
		if err := c.send(s, &discovery.DiscoveryRequest{TypeUrl: KeyPairType, ResourceNames: names, VersionInfo: c.keyVer}); err != nil {
			return err
		}
	}
	c.Log.Info("push stream open", "address", c.Address, "node", c.NodeID, "tables", c.Tables)
	// Responses are received aside so that a change of what is served can
	// be reported between them; every Send stays on this goroutine.
	responses, failed := make(chan *discovery.DiscoveryResponse), make(chan error, 1)
	go func() {
		for {
			resp, err := s.Recv()
			if err != nil {
				failed <- err
				return
			}
			select {
			case responses <- resp:
			case <-sctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case err := <-failed:
			return err
		case resp := <-responses:
			if err := c.handle(s, resp); err != nil {
				return err
			}
		case <-c.NotServedChanged:
			// Answering the last table response again carries the new
			// metadata and asks for nothing new; the hub reads the node's
			// metadata on every request.
			if err := c.send(s, &discovery.DiscoveryRequest{TypeUrl: TableType, ResourceNames: c.Tables, VersionInfo: c.tableVer, ResponseNonce: c.tableNonce}); err != nil {
				return err
			}
		}
	}
}

// send sends a request with the node's identity and metadata: the proxy's
// version, the addresses it answers on and the listeners and routes it
// does not serve.
func (c *Client) send(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient, req *discovery.DiscoveryRequest) error {
	req.Node = &core.Node{Id: c.NodeID}
	md := map[string]any{MetadataVersion: c.Version}
	if c.Version == "" {
		md[MetadataVersion] = version.Get().Short()
	}
	if len(c.Addresses) > 0 {
		values := make([]any, len(c.Addresses))
		for i, a := range c.Addresses {
			values[i] = a
		}
		md[MetadataAddresses] = values
	}
	for key, report := range map[string]func() map[string]map[string]string{
		MetadataNotServed: c.NotServed, MetadataRoutesNotServed: c.RoutesNotServed,
	} {
		if report == nil {
			continue
		}
		if ns := report(); len(ns) > 0 {
			tables := make(map[string]any, len(ns))
			for table, items := range ns {
				l := make(map[string]any, len(items))
				for name, why := range items {
					l[name] = why
				}
				tables[table] = l
			}
			md[key] = tables
		}
	}
	st, err := structpb.NewStruct(md)
	if err != nil {
		return err
	}
	req.Node.Metadata = st
	return s.Send(req)
}

// transport is TLS to the hub, verified against the CA bundle in CAFile.
func (c *Client) transport() (credentials.TransportCredentials, error) {
	if c.CAFile == "" {
		return nil, errors.New("no CA bundle for the hub's push server: give --xds-ca-file (the push channel is always TLS)")
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the hub's CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", c.CAFile)
	}
	name := c.ServerName
	if name == "" {
		if host, _, err := net.SplitHostPort(c.Address); err == nil {
			name = host
		}
	}
	return credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}), nil
}

func (c *Client) handle(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient, resp *discovery.DiscoveryResponse) error {
	if len(resp.GetResources()) == 0 {
		// The hub has nothing (yet) for the names asked: an answer, not a
		// deletion, which state-of-the-world cannot express for these types.
		// Keep serving what is served; a restarted hub that has not rebuilt
		// its tables must not empty its proxies.
		names := c.Tables
		if resp.GetTypeUrl() == KeyPairType {
			names = c.keyNames()
		}
		if resp.GetTypeUrl() == TableType && c.waiting == nil {
			c.tableNonce = resp.GetNonce()
		}
		return c.ack(s, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), names)
	}
	switch resp.GetTypeUrl() {
	case TableType:
		prev := maps.Clone(c.tables)
		for _, a := range resp.GetResources() {
			t, err := c.decodeTable(a)
			if err != nil {
				return c.nack(s, TableType, c.tableVer, resp.GetNonce(), c.Tables, fmt.Errorf("decoding a route table: %w", err))
			}
			c.tables[t.Name] = t
			if c.CacheDir != "" {
				c.encoded[t] = a.GetValue()
			}
		}
		if missing := c.missingKeys(); len(missing) > 0 {
			// Ask for the key pairs first; acknowledge the tables once served.
			c.waiting = &pending{version: resp.GetVersionInfo(), nonce: resp.GetNonce()}
			c.Log.Info("waiting for key pairs before applying", "version", resp.GetVersionInfo(), "missing", missing)
			return c.send(s, &discovery.DiscoveryRequest{TypeUrl: KeyPairType, ResourceNames: c.keyNames(), VersionInfo: c.keyVer})
		}
		c.waiting = nil
		c.tableNonce = resp.GetNonce()
		if err := c.apply(resp.GetVersionInfo(), c.keyVer); err != nil {
			c.tables = prev
			return c.nack(s, TableType, c.tableVer, resp.GetNonce(), c.Tables, err)
		}
		c.tableVer = resp.GetVersionInfo()
		return c.ack(s, TableType, c.tableVer, resp.GetNonce(), c.Tables)
	case KeyPairType:
		prev := maps.Clone(c.keys)
		for _, a := range resp.GetResources() {
			kp := &routetable.KeyPair{}
			if err := a.UnmarshalTo(kp); err != nil {
				return c.nack(s, KeyPairType, c.keyVer, resp.GetNonce(), c.keyNames(), fmt.Errorf("decoding a key pair: %w", err))
			}
			c.keys[kp.Name] = kp
		}
		tableVer := c.tableVer
		if c.waiting != nil && len(c.missingKeys()) == 0 {
			tableVer = c.waiting.version
		}
		if len(c.missingKeys()) == 0 {
			if err := c.apply(tableVer, resp.GetVersionInfo()); err != nil {
				c.keys = prev
				return c.nack(s, KeyPairType, c.keyVer, resp.GetNonce(), c.keyNames(), err)
			}
		}
		c.keyVer = resp.GetVersionInfo()
		// The tables first: what is not served of them travels with this
		// acknowledgement, and must not be read against the tables before.
		if p := c.waiting; p != nil && len(c.missingKeys()) == 0 {
			c.waiting = nil
			c.tableVer, c.tableNonce = p.version, p.nonce
			if err := c.ack(s, TableType, c.tableVer, p.nonce, c.Tables); err != nil {
				return err
			}
		}
		return c.ack(s, KeyPairType, c.keyVer, resp.GetNonce(), c.keyNames())
	}
	return nil
}

// decodeTable decodes a pushed table. The whole table comes with every
// change; the decoder reuses the messages of the version before that did
// not change, so that decoding costs what changed and the proxy, finding
// the same messages, compiles only that.
func (c *Client) decodeTable(a *anypb.Any) (*routetable.RouteTable, error) {
	if !a.MessageIs((*routetable.RouteTable)(nil)) {
		return nil, fmt.Errorf("a resource of type %s is not a route table", a.GetTypeUrl())
	}
	return c.decoder.Decode(a.GetValue())
}

// apply serves the current tables and key pairs as one version.
func (c *Client) apply(tableVer, keyVer string) error {
	version := "tables:" + tableVer + ",keys:" + keyVer
	tables := make([]*routetable.RouteTable, 0, len(c.tables))
	for _, name := range c.Tables {
		if t, ok := c.tables[name]; ok {
			tables = append(tables, t)
		}
	}
	keys := c.neededKeys()
	if err := c.Apply(version, tables, keys); err != nil {
		return err
	}
	// Key pairs no table names any more are dropped: a private key stays in
	// the proxy no longer than a listener serves it.
	c.keys = keys
	c.applied = version
	c.saveCache(version, tables)
	return nil
}

func (c *Client) ack(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient, typeURL, version, nonce string, names []string) error {
	c.acks.Inc()
	return c.send(s, &discovery.DiscoveryRequest{TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names})
}

func (c *Client) nack(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient, typeURL, version, nonce string, names []string, cause error) error {
	c.nacks.Inc()
	c.Log.Error("rejecting pushed version; the previous one keeps serving", "type", typeURL, "error", cause)
	return c.send(s, &discovery.DiscoveryRequest{
		TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names,
		ErrorDetail: &statuspb.Status{Code: 3, Message: cause.Error()},
	})
}

// keyNames are the key pairs the current tables name, sorted.
func (c *Client) keyNames() []string {
	return routetable.KeyPairNames(slices.Collect(maps.Values(c.tables))...)
}

func (c *Client) missingKeys() []string {
	var out []string
	for _, n := range c.keyNames() {
		if _, ok := c.keys[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

func (c *Client) neededKeys() map[string]*routetable.KeyPair {
	out := map[string]*routetable.KeyPair{}
	for _, n := range c.keyNames() {
		if kp, ok := c.keys[n]; ok {
			out[n] = kp
		}
	}
	return out
}

func (c *Client) saveCache(version string, tables []*routetable.RouteTable) {
	if c.CacheDir == "" {
		return
	}
	cache := &routetable.ProxyCache{Version: version}
	for _, n := range c.keyNames() {
		if kp, ok := c.keys[n]; ok {
			cache.KeyPairs = append(cache.KeyPairs, kp)
		}
	}
	data, err := proto.Marshal(cache)
	if err == nil {
		data, err = c.appendTables(data, tables)
	}
	if err == nil {
		err = os.MkdirAll(c.CacheDir, 0o700)
	}
	if err == nil {
		// The cache holds private keys: tighten a directory that existed
		// before (an emptyDir is created world-readable).
		err = os.Chmod(c.CacheDir, 0o700)
	}
	if err == nil {
		// Written aside and renamed: a crash never leaves half a cache.
		tmp := filepath.Join(c.CacheDir, cacheFile+".tmp")
		if err = os.WriteFile(tmp, data, 0o600); err == nil {
			err = os.Rename(tmp, filepath.Join(c.CacheDir, cacheFile))
		}
	}
	if err != nil {
		c.Log.Warn("could not write the table cache", "dir", c.CacheDir, "error", err)
	}
}

// appendTables appends tables to an encoded ProxyCache as its tables
// field. A table is written as the hub encoded it when it came in a push:
// encoding thousands of routes again would cost more than the rest of
// applying a change to them.
func (c *Client) appendTables(data []byte, tables []*routetable.RouteTable) ([]byte, error) {
	kept := make(map[*routetable.RouteTable][]byte, len(tables))
	for _, t := range tables {
		b, ok := c.encoded[t]
		if !ok {
			var err error
			if b, err = proto.Marshal(t); err != nil {
				return nil, err
			}
		}
		kept[t] = b
		data = protowire.AppendTag(data, cacheTablesField, protowire.BytesType)
		data = protowire.AppendBytes(data, b)
	}
	// Encodings of tables no longer applied are not needed again.
	c.encoded = kept
	return data, nil
}

// cacheTablesField is the field number of ProxyCache.tables.
const cacheTablesField = 2

// loadCache serves the version a previous run applied, if any.
func (c *Client) loadCache() {
	if c.CacheDir == "" {
		return
	}
	data, err := os.ReadFile(filepath.Join(c.CacheDir, cacheFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	cache := &routetable.ProxyCache{}
	if err == nil {
		err = proto.Unmarshal(data, cache)
	}
	if err != nil {
		c.Log.Warn("ignoring an unreadable table cache", "dir", c.CacheDir, "error", err)
		return
	}
	var tables []*routetable.RouteTable
	for _, t := range cache.Tables {
		if slices.Contains(c.Tables, t.Name) {
			tables = append(tables, t)
			c.tables[t.Name] = t
		}
	}
	keys := map[string]*routetable.KeyPair{}
	for _, kp := range cache.KeyPairs {
		keys[kp.Name], c.keys[kp.Name] = kp, kp
	}
	if err := c.Apply("cache:"+cache.Version, tables, keys); err != nil {
		c.Log.Warn("the cached tables could not be applied", "error", err)
		c.tables, c.keys = map[string]*routetable.RouteTable{}, map[string]*routetable.KeyPair{}
		return
	}
	c.Log.Info("serving cached tables until the hub answers", "version", cache.Version, "tables", len(tables))
}
