package hub

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/metadata"
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
	reviewTTL       = time.Minute
	refusedTTL      = 5 * time.Second
	reviewTimeout   = 10 * time.Second
	reviewRate      = 20 // TokenReviews per second and member, for tokens not cached
	reviewBurst     = 40
	maxTokenLength  = 16 << 10
	maxReviewsCache = 4096
)

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
	// limits bounds the TokenReviews sent to each member: whoever reaches
	// the push port cannot make the hub flood a member's API server.
	limits map[string]*rate.Limiter
}

type review struct {
	username string
	err      error
	until    time.Time
}

var _ xds.Authorizer = (*ProxyAuth)(nil)

// NewProxyAuth returns the authorizer for the hub's push server.
func NewProxyAuth(h *Hub) *ProxyAuth {
	return &ProxyAuth{hub: h, now: time.Now, reviews: map[string]review{}, limits: map[string]*rate.Limiter{}}
}

// Authenticate reads the bearer token; it is checked once the node is known.
func (a *ProxyAuth) Authenticate(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if token, ok := strings.CutPrefix(v, "Bearer "); ok && token != "" && len(token) <= maxTokenLength {
			return token, nil
		}
	}
	return "", errors.New("no bearer token: a proxy presents a token of its Gateway's ServiceAccount with audience " + ProxyTokenAudience + " (--token-file)")
}

// Authorize checks the token against the node's cluster, that the node's
// Gateway is one the hub serves, and the names asked.
func (a *ProxyAuth) Authorize(token, node, typeURL string, names []string) error {
	cluster, ns, gw, err := splitNode(node)
	if err != nil {
		return err
	}
	cl := a.hub.cluster(cluster)
	if cl == nil {
		return fmt.Errorf("cluster %q is not a member of this hub", cluster)
	}
	username, err := a.review(cl, cluster, token)
	if err != nil {
		return err
	}
	want := serviceaccount.MakeUsername(ns, ProxyServiceAccount(gw))
	if username != want {
		return fmt.Errorf("%s may not serve Gateway %s/%s of %s: its proxies use ServiceAccount %s", username, ns, gw, cluster, want)
	}
	if err := a.hub.servesGateway(cl, ns, gw); err != nil {
		return fmt.Errorf("%s: %w", cluster, err)
	}
	return authorizeNames(node, typeURL, names, a.hub.keyPairsOf(node))
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
// most a minute and never past the token's expiry.
func (a *ProxyAuth) review(cl Cluster, cluster, token string) (string, error) {
	sum := sha256.Sum256([]byte(token))
	key := cluster + "/" + string(sum[:])
	now := a.now()
	a.mu.Lock()
	if r, ok := a.reviews[key]; ok && now.Before(r.until) {
		a.mu.Unlock()
		return r.username, r.err
	}
	lim := a.limits[cluster]
	if lim == nil {
		lim = rate.NewLimiter(reviewRate, reviewBurst)
		a.limits[cluster] = lim
	}
	a.mu.Unlock()
	if !lim.Allow() {
		return "", fmt.Errorf("too many token reviews for %s at once; retry", cluster)
	}

	r := review{until: now.Add(refusedTTL)}
	ctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{ProxyTokenAudience}}}
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
		r.until = now.Add(reviewTTL)
		if exp, ok := tokenExpiry(token); ok && exp.Before(r.until) {
			r.until = exp
		}
	}
	a.mu.Lock()
	if len(a.reviews) >= maxReviewsCache {
		for k, old := range a.reviews {
			if !now.Before(old.until) {
				delete(a.reviews, k)
			}
		}
		if len(a.reviews) >= maxReviewsCache {
			clear(a.reviews)
		}
	}
	a.reviews[key] = r
	a.mu.Unlock()
	return r.username, r.err
}

// tokenExpiry reads the exp claim of a JWT. Only the member's TokenReview
// says whether the token is valid; this only bounds how long that answer is
// reused.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(*claims.Exp, 0), true
}
