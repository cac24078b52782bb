package hub

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// ProxyTokenAudience is the audience of the tokens proxies present to the
// hub. A token for any other audience — the default API-server token above
// all — is refused, so a token sent to the hub cannot be replayed against a
// member's API server, and a token meant for the API server does not open
// the push channel.
const ProxyTokenAudience = "gatehouse"

// ProxyServiceAccount is the ServiceAccount, in the Gateway's namespace,
// whose tokens a Gateway's proxies present to the hub.
func ProxyServiceAccount(gateway string) string {
	name := "gatehouse-proxy-" + gateway
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.TrimRight(name, "-.")
}

// How long a TokenReview answer is reused: never past the token's expiry.
const (
	reviewTTL      = time.Minute
	refusedTTL     = 5 * time.Second
	reviewTimeout  = 10 * time.Second
	memberRate     = 20 // TokenReviews per second and member, for tokens not cached
	memberBurst    = 40
	peerRate       = 5 // TokenReviews per second one client address may cause
	peerBurst      = 20
	maxTokenLength = 16 << 10
	maxCached      = 4096 // review answers, and client addresses tracked
	// sweepEvery: how often answers no longer of use, and limiters back
	// at their full burst, are forgotten.
	sweepEvery = time.Minute
)

// errRefused is all a client learns until its identity is proven: which
// members exist, and how their API servers answer, is not for anyone who
// reaches the push port. The hub's log has the reason.
var errRefused = status.Error(codes.Unauthenticated, "the hub does not accept these credentials for this node; its log says why")

// ProxyAuth checks that a proxy is one of its Gateway's: it presents a
// token of the Gateway's proxy ServiceAccount for the audience "gatehouse",
// which the member cluster the proxy names (the first part of its node ID)
// confirms with a TokenReview; the Gateway exists in that member and is of
// a Gatehouse class. A proxy reads only its own Gateway's table and the key
// pairs that table names.
type ProxyAuth struct {
	hub *Hub
	now func() time.Time

	mu sync.Mutex
	// reviews caches TokenReview answers by cluster and token hash.
	reviews map[string]review
	// members and peers bound the TokenReviews sent to each member and
	// caused by each client address: whoever reaches the push port cannot
	// make the hub flood a member's API server, nor starve the proxies.
	members, peers map[string]*rate.Limiter
	swept          time.Time
}

type review struct {
	username string
	err      error
	// until the answer is reused; expires is when the token itself ends.
	until, expires time.Time
}

// over reports whether the answer is of no more use: neither reused nor
// kept through a flood of reviews.
func (r review) over(now time.Time) bool { return !now.Before(r.expires) && !now.Before(r.until) }

var _ xds.Authorizer = (*ProxyAuth)(nil)

// NewProxyAuth returns the authorizer for the hub's push server.
func NewProxyAuth(h *Hub) *ProxyAuth {
	return &ProxyAuth{hub: h, now: time.Now, reviews: map[string]review{},
		members: map[string]*rate.Limiter{}, peers: map[string]*rate.Limiter{}}
}

// Authenticate reads the bearer token and the client's address; the token
// is checked once the node is known.
func (a *ProxyAuth) Authenticate(ctx context.Context) (xds.Identity, error) {
	var id xds.Identity
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		id.Peer = p.Addr.String()
		if host, _, err := net.SplitHostPort(id.Peer); err == nil {
			id.Peer = host
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if token, ok := strings.CutPrefix(v, "Bearer "); ok && token != "" && len(token) <= maxTokenLength {
			id.Token = token
			return id, nil
		}
	}
	return id, errors.New("no bearer token: a proxy presents a token of its Gateway's ServiceAccount with audience " + ProxyTokenAudience + " (--token-file)")
}

// Authorize checks the token against the node's cluster, that the node's
// Gateway is one the hub serves, and the names asked. Until the member has
// confirmed the token, a refusal says nothing about the fleet.
func (a *ProxyAuth) Authorize(id xds.Identity, node, typeURL string, names []string) error {
	cluster, ns, gw, err := splitNode(node)
	if err != nil {
		return err
	}
	want := serviceaccount.MakeUsername(ns, ProxyServiceAccount(gw))
	if err := precheck(id.Token, want, a.now()); err != nil {
		return err
	}
	cl := a.hub.cluster(cluster)
	if cl == nil {
		return a.refuse(node, id, fmt.Errorf("cluster %q is not a member of this hub", cluster))
	}
	username, err := a.review(cl, cluster, id)
	if err != nil {
		return a.refuse(node, id, err)
	}
	if username != want {
		return a.refuse(node, id, fmt.Errorf("%s may not serve Gateway %s/%s of %s: its proxies use ServiceAccount %s", username, ns, gw, cluster, want))
	}
	if err := a.hub.servesGateway(cl, ns, gw); err != nil {
		return fmt.Errorf("%s: %w", cluster, err)
	}
	return authorizeNames(node, typeURL, names, a.hub.keyPairsOf(node))
}

func (a *ProxyAuth) refuse(node string, id xds.Identity, err error) error {
	a.hub.opts.Log.Warn("proxy refused", "node", node, "peer", id.Peer, "error", err)
	return errRefused
}

// precheck refuses, without asking a member, a token that cannot be the
// node's: not a ServiceAccount token, expired, for another audience or of
// another ServiceAccount. Claims are read unverified: passing proves
// nothing (the TokenReview does), failing saves the member a review.
func precheck(token, username string, now time.Time) error {
	c, ok := tokenClaims(token)
	switch {
	case !ok:
		return errors.New("the token is not a ServiceAccount token: mount a projected ServiceAccount token with audience " + ProxyTokenAudience)
	case !slices.Contains(c.Audiences, ProxyTokenAudience):
		return fmt.Errorf("the token is not for audience %s: mount a projected ServiceAccount token with audience %s", ProxyTokenAudience, ProxyTokenAudience)
	case c.Expiry != nil && !now.Before(time.Unix(*c.Expiry, 0)):
		return errors.New("the token has expired")
	case c.Subject != username:
		return fmt.Errorf("the token is of %s; this node's proxies use ServiceAccount %s", c.Subject, username)
	}
	return nil
}

// splitNode parses "cluster/namespace/gateway"; no part may be empty.
func splitNode(node string) (cluster, ns, gw string, err error) {
	parts := strings.Split(node, "/")
	if len(parts) != 3 || slices.Contains(parts, "") {
		return "", "", "", fmt.Errorf("node ID %q is not cluster/namespace/gateway", node)
	}
	return parts[0], parts[1], parts[2], nil
}

// authorizeNames allows a node its own table and the key pairs it names;
// every name is checked, and a request that names nothing gets nothing.
func authorizeNames(node, typeURL string, names []string, keyPairs map[string]bool) error {
	switch typeURL {
	case xds.TableType:
		if len(names) == 0 {
			return fmt.Errorf("the proxies of %s must name their route table", node)
		}
		for _, n := range names {
			if n != node {
				return fmt.Errorf("the proxies of %s may read only their own route table, not %q", node, n)
			}
		}
	case xds.KeyPairType:
		for _, n := range names {
			if !keyPairs[n] {
				return fmt.Errorf("key pair %q is not named by the route table of %s", n, node)
			}
		}
	default:
		return fmt.Errorf("resource type %s is not served", typeURL)
	}
	return nil
}

// servesGateway checks that the Gateway exists in the member and is of a
// class this hub controls: a proxy identity of a namespace without such a
// Gateway serves nothing.
func (h *Hub) servesGateway(cl Cluster, ns, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
	defer cancel()
	c := cl.GetClient()
	gw := &gwv1.Gateway{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gw); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("Gateway %s/%s does not exist", ns, name)
		}
		return fmt.Errorf("reading Gateway %s/%s: %w", ns, name, err)
	}
	class := &gwv1.GatewayClass{}
	if err := c.Get(ctx, client.ObjectKey{Name: string(gw.Spec.GatewayClassName)}, class); err != nil {
		return fmt.Errorf("reading GatewayClass %s of Gateway %s/%s: %w", gw.Spec.GatewayClassName, ns, name, err)
	}
	if string(class.Spec.ControllerName) != h.opts.Controller {
		return fmt.Errorf("Gateway %s/%s is of class %s, which %s does not control", ns, name, class.Name, h.opts.Controller)
	}
	return nil
}

// review asks the member cluster who the token is, reusing an answer for at
// most a minute and never past the token's expiry. Over the review bounds,
// a token the member confirmed before keeps its answer while it lives, so
// a flood of reviews does not cut off the proxies already connected.
func (a *ProxyAuth) review(cl Cluster, cluster string, id xds.Identity) (string, error) {
	sum := sha256.Sum256([]byte(id.Token))
	key := cluster + "/" + string(sum[:])
	now := a.now()
	a.mu.Lock()
	if now.Sub(a.swept) >= sweepEvery {
		a.sweep(now)
	}
	r, cached := a.reviews[key]
	if cached && now.Before(r.until) {
		a.mu.Unlock()
		return r.username, r.err
	}
	byPeer := limiter(a.peers, id.Peer, peerRate, peerBurst)
	byMember := limiter(a.members, cluster, memberRate, memberBurst)
	a.mu.Unlock()
	if !byPeer.Allow() || !byMember.Allow() {
		if cached && r.err == nil && now.Before(r.expires) {
			return r.username, nil
		}
		return "", fmt.Errorf("too many token reviews (from %s, or for %s) at once; retry", id.Peer, cluster)
	}

	r = review{until: now.Add(refusedTTL)}
	ctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: id.Token, Audiences: []string{ProxyTokenAudience}}}
	err := cl.GetClient().Create(ctx, tr)
	cancel()
	switch {
	case err != nil:
		r.err = fmt.Errorf("reviewing the token with %s: %w", cluster, err)
	case !tr.Status.Authenticated:
		r.err = fmt.Errorf("%s does not accept the token for audience %s: %s", cluster, ProxyTokenAudience, tr.Status.Error)
	case !slices.Contains(tr.Status.Audiences, ProxyTokenAudience):
		r.err = fmt.Errorf("the token is not for audience %s: mount a projected ServiceAccount token with audience %s", ProxyTokenAudience, ProxyTokenAudience)
	default:
		r.username = tr.Status.User.Username
		r.until, r.expires = now.Add(reviewTTL), now.Add(reviewTTL)
		if c, ok := tokenClaims(id.Token); ok && c.Expiry != nil {
			r.expires = time.Unix(*c.Expiry, 0)
			if r.expires.Before(r.until) {
				r.until = r.expires
			}
		}
	}
	a.mu.Lock()
	a.remember(key, r, now)
	a.mu.Unlock()
	return r.username, r.err
}

// remember keeps an answer; when the cache is full it forgets, in order,
// answers past use, refusals, and only then everything (called with a.mu).
func (a *ProxyAuth) remember(key string, r review, now time.Time) {
	if len(a.reviews) >= maxCached {
		maps.DeleteFunc(a.reviews, func(_ string, old review) bool { return old.over(now) })
	}
	if len(a.reviews) >= maxCached {
		maps.DeleteFunc(a.reviews, func(_ string, old review) bool { return old.err != nil })
	}
	if len(a.reviews) >= maxCached {
		clear(a.reviews)
	}
	a.reviews[key] = r
}

// sweep forgets what no longer changes an answer: reviews past both their
// reuse and their token's expiry, and limiters that have refilled to their
// burst, which act as new ones would. Tokens rotate (hourly by default)
// and addresses come and go; without this, a long-running hub would hold
// every token and address it ever saw, up to the cache bounds (called with
// a.mu).
func (a *ProxyAuth) sweep(now time.Time) {
	a.swept = now
	maps.DeleteFunc(a.reviews, func(_ string, r review) bool { return r.over(now) })
	for _, m := range []map[string]*rate.Limiter{a.members, a.peers} {
		maps.DeleteFunc(m, func(_ string, l *rate.Limiter) bool { return l.TokensAt(now) >= float64(l.Burst()) })
	}
}

// limiter returns the rate limiter of key in m, made on first use; a map
// that has grown past maxCached starts again (called with a.mu).
func limiter(m map[string]*rate.Limiter, key string, r rate.Limit, burst int) *rate.Limiter {
	l := m[key]
	if l == nil {
		if len(m) >= maxCached {
			clear(m)
		}
		l = rate.NewLimiter(r, burst)
		m[key] = l
	}
	return l
}

// claims are what the hub reads of a token before a member confirms it.
type claims struct {
	Subject   string    `json:"sub"`
	Expiry    *int64    `json:"exp"`
	Audiences audiences `json:"aud"`
}

// audiences is a JWT aud claim: one string or a list.
type audiences []string

func (a *audiences) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audiences{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// tokenClaims reads a JWT's claims without verifying it: only the member's
// TokenReview says whether the token is valid.
func tokenClaims(token string) (claims, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claims{}, false
	}
	var c claims
	if json.Unmarshal(payload, &c) != nil {
		return claims{}, false
	}
	return c, true
}
