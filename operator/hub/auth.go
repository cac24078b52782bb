package hub

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"
	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
)

// ProxyServiceAccount is the ServiceAccount, in the Gateway's namespace,
// whose tokens a Gateway's proxies present to the hub.
func ProxyServiceAccount(gateway string) string {
	name := "gatehouse-proxy-" + gateway
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.TrimRight(name, "-.")
}

// ProxyAuth checks that a proxy is one of its Gateway's: it presents a
// token of the Gateway's proxy ServiceAccount, which the member cluster the
// proxy names (as the first part of its node ID) confirms with a
// TokenReview. A proxy reads only its own Gateway's table and the key pairs
// that table names.
type ProxyAuth struct {
	hub *Hub
	mu  sync.Mutex
	// reviews caches TokenReview answers by cluster and token hash.
	reviews map[string]review
}

type review struct {
	username string
	err      error
	until    time.Time
}

var _ xds.Authorizer = (*ProxyAuth)(nil)

// NewProxyAuth returns the authorizer for the hub's push server.
func NewProxyAuth(h *Hub) *ProxyAuth {
	return &ProxyAuth{hub: h, reviews: map[string]review{}}
}

// Authenticate reads the bearer token; it is checked once the node is known.
func (a *ProxyAuth) Authenticate(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if token, ok := strings.CutPrefix(v, "Bearer "); ok && token != "" {
			return token, nil
		}
	}
	return "", errors.New("no bearer token: a proxy presents its Gateway's ServiceAccount token (--token-file)")
}

// Authorize checks the token against the node's cluster and the names asked.
func (a *ProxyAuth) Authorize(token, node, typeURL string, names []string) error {
	parts := strings.SplitN(node, "/", 3)
	if len(parts) != 3 {
		return fmt.Errorf("node ID %q is not cluster/namespace/gateway", node)
	}
	cluster, ns, gw := parts[0], parts[1], parts[2]
	username, err := a.review(cluster, token)
	if err != nil {
		return err
	}
	want := serviceaccount.MakeUsername(ns, ProxyServiceAccount(gw))
	if username != want {
		return fmt.Errorf("%s may not serve Gateway %s/%s of %s: its proxies use ServiceAccount %s", username, ns, gw, cluster, want)
	}
	switch typeURL {
	case xds.TableType:
		for _, n := range names {
			if n != node {
				return fmt.Errorf("the proxies of %s may read only their own route table, not %s", node, n)
			}
		}
	case xds.KeyPairType:
		allowed := a.hub.keyPairsOf(node)
		for _, n := range names {
			if !allowed[n] {
				return fmt.Errorf("key pair %s is not named by the route table of %s", n, node)
			}
		}
	default:
		return fmt.Errorf("resource type %s is not served", typeURL)
	}
	return nil
}

// review asks the member cluster who the token is, at most once a minute
// per token.
func (a *ProxyAuth) review(cluster, token string) (string, error) {
	sum := sha256.Sum256([]byte(token))
	key := cluster + "/" + string(sum[:])
	a.mu.Lock()
	if r, ok := a.reviews[key]; ok && time.Now().Before(r.until) {
		a.mu.Unlock()
		return r.username, r.err
	}
	a.mu.Unlock()

	r := review{until: time.Now().Add(time.Minute)}
	cl := a.hub.cluster(cluster)
	if cl == nil {
		r.err, r.until = fmt.Errorf("cluster %q is not a member of this hub", cluster), time.Now().Add(5*time.Second)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
		err := cl.GetClient().Create(ctx, tr)
		cancel()
		switch {
		case err != nil:
			r.err, r.until = fmt.Errorf("reviewing the token with %s: %w", cluster, err), time.Now().Add(5*time.Second)
		case !tr.Status.Authenticated:
			r.err = fmt.Errorf("%s does not recognise the token: %s", cluster, tr.Status.Error)
		default:
			r.username = tr.Status.User.Username
		}
	}
	a.mu.Lock()
	a.reviews[key] = r
	a.mu.Unlock()
	return r.username, r.err
}
