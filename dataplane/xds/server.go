// Package xds pushes route tables from the hub to proxies over xDS (ADS, in
// state-of-the-world mode) and records what each proxy acknowledged. The
// server side is what the hub embeds; the client side is what
// gatehouse-proxy runs.
package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	sotw "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// Type URLs of the two resources on the stream.
const (
	TableType   = "type.googleapis.com/gatehouse.routetable.v1.RouteTable"
	KeyPairType = "type.googleapis.com/gatehouse.routetable.v1.KeyPair"
)

// MetadataAddresses is the node metadata key under which a proxy lists the
// addresses it answers on (a list of strings); the hub reports them as the
// Gateway's addresses when nothing else gives any.
const MetadataAddresses = "gatehouse.dev/addresses"

// MetadataNotServed is the node metadata key under which a proxy lists the
// listeners of the version it serves that it could not serve: a struct of
// table name → struct of listener name → why. It is sent with every
// request, acknowledgements included, so that an acknowledgement says what
// of the version is served: a listener that cannot be served costs only
// that listener, and the rest of the version is acknowledged.
const MetadataNotServed = "gatehouse.dev/listener-errors"

// MetadataRoutesNotServed is the node metadata key under which a proxy
// lists the routes of the version it serves that it left out because they
// do not compile: a struct of table name → struct of route object key
// (routetable.ObjectKey) → why. Like MetadataNotServed it travels with
// every request: a route that does not compile costs only that route, and
// the rest of the version is acknowledged.
const MetadataRoutesNotServed = "gatehouse.dev/route-errors"

// MetadataVersion is the node metadata key under which a proxy names its
// build (a string, internal/version's Short), so that the hub can tell
// which versions a Gateway's replicas run during a rollout. The server
// keeps at most version.MaxReported bytes of it.
const MetadataVersion = "gatehouse.dev/version"

// Bounds of what one stream may advertise and report.
const (
	maxAdvertised    = 16
	maxNotServed     = 256
	maxNotServedText = 1024
)

// Hash identifies a resource's content: the SHA-256 of its deterministic
// encoding, which is also what the stream carries.
func Hash(m proto.Message) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return ""
	}
	return hashBytes(b)
}

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// NodeStatus is what the server knows of one proxy.
type NodeStatus struct {
	Node string
	// Streams open now.
	Streams int
	// Acked maps resource names to the hash the node last acknowledged, on
	// any of its streams.
	Acked map[string]string
	// Replicas holds, for each open stream of the node (one per proxy
	// replica), what that stream acknowledged: all must serve a table for
	// the Gateway to be served.
	Replicas []Replica
	// Nack is the last rejection, while the replica that rejected is
	// connected and has not acknowledged the same resources since. Another
	// replica's acknowledgement does not take it back.
	Nack *Nack
	// Addresses are what the connected replicas advertise as where they
	// answer (sorted, without repeats).
	Addresses []string
	Updated   time.Time
}

// Replica is what one stream of a node serves.
type Replica struct {
	// Acked maps resource names to the hash the stream last acknowledged.
	Acked map[string]string
	// NotServed lists the listeners of those tables the proxy does not
	// serve: table name → listener name → why, as the proxy reports it.
	NotServed map[string]map[string]string
	// RoutesNotServed lists the routes of those tables the proxy left out:
	// table name → route object key → why, as the proxy reports it.
	RoutesNotServed map[string]map[string]string
	// Version is the build the replica reports (version.Reported; Unknown
	// for a proxy that reports none).
	Version string
}

// Nack is a rejected push.
type Nack struct {
	Resources map[string]string // name → hash rejected
	Message   string
	At        time.Time
	stream    int64
}

// Authorizer decides which proxies may connect and what they may read. The
// hub fills it with token checks against member clusters.
type Authorizer interface {
	// Authenticate returns who opened the stream (ctx carries its gRPC
	// metadata and peer).
	Authenticate(ctx context.Context) (Identity, error)
	// Authorize checks that identity may read these resources as this node.
	Authorize(identity Identity, node string, typeURL string, names []string) error
}

// Identity is what a stream presented when it opened.
type Identity struct {
	// Token is the bearer token.
	Token string
	// Peer is the client's network address (host only), to bound what one
	// client can make the hub do.
	Peer string
}

// Bounds on what any client of the push port can make the server hold.
const (
	maxStreams    = 10000
	maxNodeID     = 512
	changeEvery   = time.Second // at most one status change a second per stream from metadata alone
	changeBurst   = 5
	maxRecvBytes  = 1 << 20
	maxStreamsPer = 16 // concurrent streams on one connection
)

// ServerOptions are the gRPC options the push server needs: TLS with
// creds, and bounds on what one connection may send.
func ServerOptions(creds credentials.TransportCredentials) []grpc.ServerOption {
	return []grpc.ServerOption{grpc.Creds(creds), grpc.MaxRecvMsgSize(maxRecvBytes), grpc.MaxConcurrentStreams(maxStreamsPer)}
}

// Server serves tables and key pairs to proxies.
type Server struct {
	tables, keys *cachev3.LinearCache
	xds          serverv3.Server
	auth         Authorizer
	log          *slog.Logger
	// OnChange, when set, is called after a node's status changes.
	OnChange func(node string)

	mu     sync.Mutex
	hashes map[string]string // resource name → hash, for the current content
	// names maps the hash of each current resource back to its name, to
	// tell what a response carried; a hash leaves with its content.
	names   map[string]string
	streams map[int64]*stream
	// nodes with at least one stream open: a node whose last stream closed
	// is forgotten, and reads as one never seen.
	nodes map[string]*NodeStatus
}

type stream struct {
	identity Identity
	// changes bounds the status changes metadata alone may cause; pending
	// is set while one waits for the bound.
	changes   *rate.Limiter
	pending   bool
	node      string
	addresses []string
	version   string
	// sent: nonce → name → hash, for the last maxSent responses; a proxy
	// answers only the latest, and one that answers none must not make the
	// stream hold every response ever sent.
	sent      map[string]map[string]string
	sentOrder []string
	acked     map[string]string            // name → hash
	notServed map[string]map[string]string // table → listener → why
	// routesNotServed: table → route object key → why
	routesNotServed map[string]map[string]string
}

// NewServer returns a server with no resources. auth may be nil to allow all.
func NewServer(ctx context.Context, auth Authorizer, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		tables: cachev3.NewLinearCache(TableType), keys: cachev3.NewLinearCache(KeyPairType),
		auth: auth, log: log,
		hashes: map[string]string{}, names: map[string]string{},
		streams: map[int64]*stream{}, nodes: map[string]*NodeStatus{},
	}
	mux := &cachev3.MuxCache{
		Classify: func(r *cachev3.Request) string { return r.GetTypeUrl() },
		Caches:   map[string]cachev3.Cache{TableType: s.tables, KeyPairType: s.keys},
	}
	// In legacy xDS an empty list of names asks for every resource of the
	// type: every Gateway's table, every listener's key pair. A proxy names
	// what it wants; nothing is ever sent to a request that names nothing.
	s.xds = serverv3.NewServer(ctx, mux, s, sotw.DeactivateLegacyWildcard())
	return s
}

// SetAuthorizer sets who may connect and read what; call before serving.
func (s *Server) SetAuthorizer(a Authorizer) { s.auth = a }

// Register adds the ADS service to a gRPC server.
func (s *Server) Register(g *grpc.Server) {
	discovery.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
}

// SetTable publishes a table under its name; proxies that subscribe to it
// receive it unless its content is unchanged. It returns the table's hash.
func (s *Server) SetTable(t *routetable.RouteTable) (string, error) {
	if t.Name == "" {
		return "", errors.New("a route table needs a name")
	}
	return s.set(s.tables, t.Name, t)
}

// SetKeyPair publishes a key pair under its name.
func (s *Server) SetKeyPair(kp *routetable.KeyPair) (string, error) {
	if kp.Name == "" {
		return "", errors.New("a key pair needs a name")
	}
	return s.set(s.keys, kp.Name, kp)
}

func (s *Server) set(c *cachev3.LinearCache, name string, m proto.Message) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return "", err
	}
	h := hashBytes(b)
	s.mu.Lock()
	same := s.hashes[name] == h
	if !same {
		s.forgetHash(name)
	}
	s.hashes[name], s.names[h] = h, name
	s.mu.Unlock()
	if same {
		return h, nil
	}
	return h, c.UpdateResource(name, encoded(m, b))
}

// encoded is a message of m's type that encodes to b, m's encoding, as
// fields it does not know: the cache encodes what it sends again, and for a
// table of thousands of routes that is a copy, not a second walk of them.
func encoded(m proto.Message, b []byte) proto.Message {
	e := m.ProtoReflect().Type().New()
	e.SetUnknown(b)
	return e.Interface()
}

// DeleteTable withdraws a table; subscribed proxies keep what they have.
func (s *Server) DeleteTable(name string) error { return s.del(s.tables, name) }

// DeleteKeyPair withdraws a key pair.
func (s *Server) DeleteKeyPair(name string) error { return s.del(s.keys, name) }

func (s *Server) del(c *cachev3.LinearCache, name string) error {
	s.mu.Lock()
	s.forgetHash(name)
	delete(s.hashes, name)
	s.mu.Unlock()
	return c.DeleteResource(name)
}

// forgetHash drops the hash of name's current content from names: an
// answer to a response that carried it is no longer about what is
// published (called with s.mu held).
func (s *Server) forgetHash(name string) {
	if h, ok := s.hashes[name]; ok && s.names[h] == name {
		delete(s.names, h)
	}
}

// Status returns a copy of what the server knows of a node.
func (s *Server) Status(node string) NodeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[node]
	if !ok {
		return NodeStatus{Node: node}
	}
	out := *n
	out.Acked = maps.Clone(n.Acked)
	// In the order streams opened, so that what is read from the replicas
	// (the first one's reason, say) does not change from one call to the
	// next.
	for _, id := range slices.Sorted(maps.Keys(s.streams)) {
		if st := s.streams[id]; st.node == node {
			out.Replicas = append(out.Replicas, Replica{Acked: maps.Clone(st.acked), NotServed: st.notServed, RoutesNotServed: st.routesNotServed, Version: st.version})
			out.Addresses = append(out.Addresses, st.addresses...)
		}
	}
	slices.Sort(out.Addresses)
	out.Addresses = slices.Compact(out.Addresses)
	return out
}

// Nodes lists the nodes with a stream open.
func (s *Server) Nodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.nodes))
	for n := range s.nodes {
		out = append(out, n)
	}
	return out
}

// OnStreamOpen authenticates the proxy that opens a stream.
func (s *Server) OnStreamOpen(ctx context.Context, id int64, typeURL string) error {
	var identity Identity
	if s.auth != nil {
		var err error
		if identity, err = s.auth.Authenticate(ctx); err != nil {
			s.log.Warn("proxy refused", "stream", id, "error", err)
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.streams) >= maxStreams {
		s.log.Warn("proxy refused: too many streams open", "stream", id, "open", len(s.streams))
		return errors.New("the hub has too many streams open; retry later")
	}
	s.streams[id] = &stream{identity: identity, changes: rate.NewLimiter(rate.Every(changeEvery), changeBurst),
		sent: map[string]map[string]string{}, acked: map[string]string{}}
	return nil
}

// OnStreamClosed forgets a stream, and its node with its last stream.
func (s *Server) OnStreamClosed(id int64, _ *core.Node) {
	s.mu.Lock()
	st := s.streams[id]
	delete(s.streams, id)
	var node string
	if st != nil && st.node != "" {
		node = st.node
		if n := s.nodes[node]; n != nil {
			n.Streams--
			n.Updated = time.Now()
			if n.Nack != nil && n.Nack.stream == id {
				n.Nack = nil
			}
			if n.Streams <= 0 {
				delete(s.nodes, node)
			}
		}
	}
	s.mu.Unlock()
	s.changed(node)
}

// OnStreamRequest records acknowledgements and rejections.
func (s *Server) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	s.mu.Lock()
	st := s.streams[id]
	if st == nil {
		s.mu.Unlock()
		return fmt.Errorf("stream %d is unknown", id)
	}
	node, identity := st.node, st.identity
	if node == "" {
		if node = req.GetNode().GetId(); node == "" || len(node) > maxNodeID {
			s.mu.Unlock()
			return fmt.Errorf("the first request must name the node, in at most %d bytes", maxNodeID)
		}
	}
	if err := named(req.GetTypeUrl(), req.GetResourceNames()); err != nil {
		s.mu.Unlock()
		s.log.Warn("proxy refused", "node", node, "error", err)
		return err
	}
	if s.auth != nil {
		// Authorizing may ask a member cluster: not under the lock. A refused
		// stream never counts as one of the node's replicas.
		s.mu.Unlock()
		if err := s.auth.Authorize(identity, node, req.GetTypeUrl(), req.GetResourceNames()); err != nil {
			s.log.Warn("proxy refused", "node", node, "error", err)
			return err
		}
		s.mu.Lock()
		if st = s.streams[id]; st == nil {
			s.mu.Unlock()
			return fmt.Errorf("stream %d closed", id)
		}
	}
	if st.node == "" {
		st.node = node
		st.addresses = advertised(req.GetNode())
		st.version = version.Reported(req.GetNode().GetMetadata().GetFields()[MetadataVersion].GetStringValue())
		n := s.nodes[node]
		if n == nil {
			n = &NodeStatus{Node: node, Acked: map[string]string{}}
			s.nodes[node] = n
		}
		n.Streams++
	}
	changed := false
	// What is not served is read from every request: it changes with an
	// acknowledgement, and between versions when a listener comes up.
	// The map is replaced, never changed, so Status may share it.
	ns, rs := notServed(req.GetNode(), MetadataNotServed), notServed(req.GetNode(), MetadataRoutesNotServed)
	if !equalNotServed(st.notServed, ns) || !equalNotServed(st.routesNotServed, rs) {
		st.notServed, st.routesNotServed = ns, rs
		s.nodes[node].Updated = time.Now()
		changed = s.allowChange(st, node)
	}
	if nonce := req.GetResponseNonce(); nonce != "" {
		if sent, ok := st.sent[nonce]; ok {
			delete(st.sent, nonce)
			n := s.nodes[node]
			if req.GetErrorDetail() != nil {
				n.Nack = &Nack{Resources: sent, Message: req.GetErrorDetail().GetMessage(), At: time.Now(), stream: id}
			} else {
				for name, h := range sent {
					n.Acked[name] = h
					st.acked[name] = h
				}
				if n.Nack != nil && n.Nack.stream == id && covers(sent, n.Nack.Resources) {
					n.Nack = nil
				}
			}
			n.Updated = time.Now()
			changed = true
		}
	}
	s.mu.Unlock()
	if changed {
		s.changed(node)
	}
	return nil
}

// named refuses wildcard subscriptions: a route table must be asked for by
// name, and no request may name the wildcard "*". An empty list of key
// pairs is allowed: it unsubscribes from all of them (legacy wildcard mode
// is off, so it never means "all").
func named(typeURL string, names []string) error {
	if typeURL == TableType && len(names) == 0 {
		return errors.New("a route table request must name the table: the wildcard (no names) is not served")
	}
	for _, n := range names {
		if n == "" || n == "*" {
			return fmt.Errorf("resource name %q is not served: name each resource", n)
		}
	}
	return nil
}

// advertised reads the addresses a proxy says it answers on from its node
// metadata; anything that is not a list of strings is ignored.
func advertised(n *core.Node) []string {
	var out []string
	for _, v := range n.GetMetadata().GetFields()[MetadataAddresses].GetListValue().GetValues() {
		if a := v.GetStringValue(); a != "" && len(out) < maxAdvertised {
			out = append(out, a)
		}
	}
	return out
}

// notServed reads the listeners or routes a proxy reports it does not
// serve from its node metadata under key, within bounds; what does not
// have the expected shape is ignored.
func notServed(n *core.Node, key string) map[string]map[string]string {
	tables := n.GetMetadata().GetFields()[key].GetStructValue().GetFields()
	if len(tables) == 0 {
		return nil
	}
	out := map[string]map[string]string{}
	count := 0
	for _, table := range slices.Sorted(maps.Keys(tables)) {
		listeners := tables[table].GetStructValue().GetFields()
		for _, name := range slices.Sorted(maps.Keys(listeners)) {
			why := listeners[name].GetStringValue()
			if why == "" || count == maxNotServed {
				continue
			}
			if len(why) > maxNotServedText {
				why = strings.ToValidUTF8(why[:maxNotServedText], "") + "…"
			}
			if out[table] == nil {
				out[table] = map[string]string{}
			}
			out[table][name] = why
			count++
		}
	}
	return out
}

func equalNotServed(a, b map[string]map[string]string) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
}

// covers reports whether an acknowledgement names every resource a
// rejection named, so that the rejection is over.
func covers(acked, nacked map[string]string) bool {
	for name := range nacked {
		if _, ok := acked[name]; !ok {
			return false
		}
	}
	return true
}

// OnStreamResponse remembers what each nonce carried, to know later what a
// proxy acknowledged or rejected.
func (s *Server) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[id]
	if st == nil {
		return
	}
	sent := make(map[string]string, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		h := hashBytes(r.GetValue())
		if name, ok := s.names[h]; ok {
			sent[name] = h
		}
	}
	st.remember(resp.GetNonce(), sent)
}

// maxSent bounds the responses a stream remembers while they are not
// answered: a proxy answers each before the next is sent, so a few cover
// any proxy that follows the protocol.
const maxSent = 8

func (st *stream) remember(nonce string, sent map[string]string) {
	st.sent[nonce] = sent
	st.sentOrder = append(st.sentOrder, nonce)
	for len(st.sentOrder) > maxSent {
		delete(st.sent, st.sentOrder[0])
		st.sentOrder = st.sentOrder[1:]
	}
}

// allowChange bounds how often a stream's metadata alone makes the hub
// recompute its cluster: a proxy flipping its report on every request
// would otherwise translate the member again and again. A change over the
// bound is reported once the bound allows (called with s.mu held).
func (s *Server) allowChange(st *stream, node string) bool {
	if st.changes.Allow() {
		return true
	}
	if !st.pending {
		st.pending = true
		time.AfterFunc(st.changes.Reserve().Delay(), func() {
			s.mu.Lock()
			st.pending = false
			s.mu.Unlock()
			s.changed(node)
		})
	}
	return false
}

func (s *Server) changed(node string) {
	if node != "" && s.OnChange != nil {
		s.OnChange(node)
	}
}

// Unused parts of the server callback interface.
func (s *Server) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error         { return nil }
func (s *Server) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}
func (s *Server) OnDeltaStreamOpen(context.Context, int64, string) error {
	return errors.New("delta xDS is not served: use state of the world")
}
func (s *Server) OnDeltaStreamClosed(int64, *core.Node) {}
func (s *Server) OnStreamDeltaRequest(int64, *discovery.DeltaDiscoveryRequest) error {
	return nil
}
func (s *Server) OnStreamDeltaResponse(int64, *discovery.DeltaDiscoveryRequest, *discovery.DeltaDiscoveryResponse) {
}
