package hub

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

type fakeCluster struct{ c client.Client }

func (f fakeCluster) GetClient() client.Client { return f.c }
func (f fakeCluster) GetEventRecorderFor(string) record.EventRecorder {
	return record.NewFakeRecorder(10)
}

// member answers TokenReviews from tokens: token → (username, audiences).
// A token it does not know is not authenticated.
func member(t *testing.T, tokens map[string]authnv1.TokenReviewStatus, reviews *int, objs ...client.Object) Cluster {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := gwv1.Install(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			tr, ok := obj.(*authnv1.TokenReview)
			if !ok {
				return c.Create(ctx, obj, opts...)
			}
			*reviews++
			st, known := tokens[tr.Spec.Token]
			if !known {
				tr.Status = authnv1.TokenReviewStatus{Error: "invalid bearer token"}
				return nil
			}
			// As the API server does: a token whose audiences do not
			// intersect the ones asked for is not authenticated.
			for _, a := range st.Audiences {
				for _, want := range tr.Spec.Audiences {
					if a == want {
						tr.Status = st
						tr.Status.Audiences = []string{a}
						return nil
					}
				}
			}
			tr.Status = authnv1.TokenReviewStatus{Error: "token audiences is invalid for the target audience"}
			return nil
		},
	}).Build()
	return fakeCluster{c}
}

// token is a JWT-shaped ServiceAccount token (unsigned: the fake member
// decides whether it is valid); nonce keeps tokens otherwise alike apart.
type token struct {
	sub, aud, nonce string
	exp             time.Time
}

const (
	proxyUser  = "system:serviceaccount:infra:gatehouse-proxy-shared"
	tenantUser = "system:serviceaccount:shop:gatehouse-proxy-anything"
	node       = "member-1/infra/shared"
)

func (t token) String() string {
	if t.aud == "" {
		t.aud = ProxyTokenAudience
	}
	if t.exp.IsZero() {
		t.exp = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) // fixed: the same token every time
	}
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":%q,"aud":[%q],"exp":%d,"jti":%q}`, t.sub, t.aud, t.exp.Unix(), t.nonce))
	return "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
}

func id(t token) xds.Identity { return xds.Identity{Token: t.String(), Peer: "10.0.0.1"} }

func TestProxyAuthorization(t *testing.T) {
	good, apiServer := token{sub: proxyUser}, token{sub: proxyUser, aud: "https://kubernetes.default.svc"}
	tenant, forged := token{sub: tenantUser}, token{sub: proxyUser, nonce: "forged"}
	tokens := map[string]authnv1.TokenReviewStatus{
		good.String():      {Authenticated: true, User: authnv1.UserInfo{Username: proxyUser}, Audiences: []string{ProxyTokenAudience}},
		apiServer.String(): {Authenticated: true, User: authnv1.UserInfo{Username: proxyUser}, Audiences: []string{"https://kubernetes.default.svc"}},
		tenant.String():    {Authenticated: true, User: authnv1.UserInfo{Username: tenantUser}, Audiences: []string{ProxyTokenAudience}},
	}
	objs := []client.Object{
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}},
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/other"}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse"}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "foreign"}, Spec: gwv1.GatewaySpec{GatewayClassName: "other"}},
	}
	var reviews int
	h := New(xds.NewServer(t.Context(), nil, nil), Options{})
	w := &worker{hub: h, name: "member-1", cl: member(t, tokens, &reviews, objs...), keys: map[string]map[string]bool{
		node: {"member-1/infra/shared-tls": true},
	}}
	h.clusters["member-1"] = w
	a := NewProxyAuth(h)
	const refused = "does not accept these credentials"

	for _, c := range []struct {
		name, node, typeURL string
		token               token
		names               []string
		refused             string // part of the error; "" allows
	}{
		{"its own table", node, xds.TableType, good, []string{node}, ""},
		{"its own key pair", node, xds.KeyPairType, good, []string{"member-1/infra/shared-tls"}, ""},
		{"unsubscribing from key pairs", node, xds.KeyPairType, good, nil, ""},
		{"tables without names", node, xds.TableType, good, nil, "must name their route table"},
		{"another table", node, xds.TableType, good, []string{"member-2/infra/shared"}, "only their own route table"},
		{"the wildcard", node, xds.TableType, good, []string{"*"}, "only their own route table"},
		{"a key pair its table does not name", node, xds.KeyPairType, good, []string{"member-2/infra/shared-tls"}, "not named by the route table"},
		{"an API-server token", node, xds.TableType, apiServer, []string{node}, "audience"},
		{"a tenant's ServiceAccount for the Gateway", node, xds.TableType, tenant, []string{node}, "this node's proxies use ServiceAccount " + proxyUser},
		{"a tenant's ServiceAccount for a Gateway that does not exist", "member-1/shop/anything", xds.KeyPairType, tenant, nil, "does not exist"},
		{"a forged token the member does not know", node, xds.TableType, forged, []string{node}, refused},
		{"an expired token", node, xds.TableType, token{sub: proxyUser, exp: time.Now().Add(-time.Minute)}, []string{node}, "expired"},
		{"a cluster that is not a member", "member-9/infra/shared", xds.TableType, good, []string{"member-9/infra/shared"}, refused},
		{"a node ID with an empty part", "member-1//shared", xds.TableType, good, []string{node}, "not cluster/namespace/gateway"},
		{"an unknown resource type", node, "type.googleapis.com/envoy.config.listener.v3.Listener", good, []string{node}, "not served"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := a.Authorize(id(c.token), c.node, c.typeURL, c.names)
			switch {
			case c.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
				t.Fatalf("got %v, want a refusal saying %q", err, c.refused)
			}
		})
	}

	t.Run("before the member confirms a token, a refusal names no member", func(t *testing.T) {
		for _, n := range []string{"member-9/infra/shared", node} {
			err := a.Authorize(id(forged), n, xds.TableType, []string{n})
			if err == nil || strings.Contains(err.Error(), "member-") {
				t.Fatalf("node %s: %v", n, err)
			}
		}
	})

	t.Run("a Gateway of another class", func(t *testing.T) {
		foreign := token{sub: "system:serviceaccount:shop:gatehouse-proxy-foreign"}
		tokens[foreign.String()] = authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{ProxyTokenAudience},
			User: authnv1.UserInfo{Username: foreign.sub}}
		if err := a.Authorize(id(foreign), "member-1/shop/foreign", xds.TableType, []string{"member-1/shop/foreign"}); err == nil || !strings.Contains(err.Error(), "does not control") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("an answer is not reused past the token's expiry", func(t *testing.T) {
		short := token{sub: proxyUser, nonce: "short", exp: time.Now().Add(10 * time.Second)}
		tokens[short.String()] = tokens[good.String()]
		before := reviews
		_ = a.Authorize(id(short), node, xds.TableType, []string{node})
		_ = a.Authorize(id(short), node, xds.TableType, []string{node})
		if reviews != before+1 {
			t.Fatalf("%d reviews for two requests within the token's life, want 1", reviews-before)
		}
		a.now = func() time.Time { return time.Now().Add(20 * time.Second) }
		defer func() { a.now = time.Now }()
		delete(tokens, short.String()) // expired: the member no longer accepts it
		if err := a.Authorize(id(short), node, xds.TableType, []string{node}); err == nil {
			t.Fatal("an expired token was still accepted from the cache")
		}
	})

	t.Run("a flood of forged tokens neither reaches the member nor cuts off a connected proxy", func(t *testing.T) {
		connected := token{sub: proxyUser, nonce: "connected"}
		tokens[connected.String()] = tokens[good.String()]
		if err := a.Authorize(id(connected), node, xds.TableType, []string{node}); err != nil {
			t.Fatal(err)
		}
		// A minute on, its answer is due for a review, in the middle of a
		// flood from many addresses.
		a.now = func() time.Time { return time.Now().Add(61 * time.Second) }
		defer func() { a.now = time.Now }()
		before := reviews
		for i := range 400 {
			flood := xds.Identity{Token: token{sub: proxyUser, nonce: fmt.Sprint(i)}.String(), Peer: fmt.Sprintf("10.1.%d.%d", i/250, i%250)}
			_ = a.Authorize(flood, node, xds.TableType, []string{node})
		}
		if sent := reviews - before; sent > memberBurst+memberRate {
			t.Errorf("400 forged tokens caused %d reviews in the member", sent)
		}
		if err := a.Authorize(id(connected), node, xds.TableType, []string{node}); err != nil {
			t.Fatalf("the connected proxy was cut off by the flood: %v", err)
		}
	})

	t.Run("one client address causes at most its own share of reviews", func(t *testing.T) {
		fresh := NewProxyAuth(h)
		before := reviews
		for i := range 100 {
			flood := xds.Identity{Token: token{sub: proxyUser, nonce: fmt.Sprint("one-", i)}.String(), Peer: "10.2.0.1"}
			_ = fresh.Authorize(flood, node, xds.TableType, []string{node})
		}
		if sent := reviews - before; sent > peerBurst+peerRate {
			t.Errorf("100 forged tokens from one address caused %d reviews", sent)
		}
	})
}

// Tokens rotate and proxies come and go: answers about tokens that have
// expired, and the rate limiters of addresses and members that went quiet,
// are forgotten, so that the cache does not hold every token ever seen.
func TestProxyAuthForgetsExpiredTokens(t *testing.T) {
	tokens := map[string]authnv1.TokenReviewStatus{}
	objs := []client.Object{
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse"}},
	}
	var reviews int
	h := New(xds.NewServer(t.Context(), nil, nil), Options{})
	h.clusters["member-1"] = &worker{hub: h, name: "member-1", cl: member(t, tokens, &reviews, objs...)}
	a := NewProxyAuth(h)
	const n = memberBurst // as many as the member's bound lets through at once
	for i := range n {
		tok := token{sub: proxyUser, nonce: fmt.Sprint("rotated-", i), exp: time.Now().Add(10 * time.Minute)}
		tokens[tok.String()] = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: proxyUser}, Audiences: []string{ProxyTokenAudience}}
		if err := a.Authorize(xds.Identity{Token: tok.String(), Peer: fmt.Sprintf("10.3.0.%d", i)}, node, xds.TableType, []string{node}); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.reviews) != n || len(a.peers) != n {
		t.Fatalf("%d answers and %d addresses cached after %d tokens from as many addresses", len(a.reviews), len(a.peers), n)
	}

	// An hour on, every one of those tokens has expired; a new one arrives.
	a.now = func() time.Time { return time.Now().Add(time.Hour) }
	fresh := token{sub: proxyUser, nonce: "fresh", exp: time.Now().Add(2 * time.Hour)}
	tokens[fresh.String()] = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: proxyUser}, Audiences: []string{ProxyTokenAudience}}
	err := a.Authorize(id(fresh), node, xds.TableType, []string{node})
	if len(a.reviews) != 1 || len(a.peers) != 1 || len(a.members) != 1 {
		t.Errorf("after %d tokens expired, the hub holds %d answers, %d address limiters and %d member limiters; want the new token's only",
			n, len(a.reviews), len(a.peers), len(a.members))
	}
	if err != nil {
		t.Errorf("the new token was refused: %v", err)
	}
}

// A proxy resuming after a hub restart or a member's credential rotation
// asks for the key pairs of its last table before the cluster's first pass
// has published the table again: the request waits for that pass instead
// of ending the stream, and is then decided against the new table.
func TestProxyAuthWaitsForTheFirstPass(t *testing.T) {
	good := token{sub: proxyUser}
	tokens := map[string]authnv1.TokenReviewStatus{
		good.String(): {Authenticated: true, User: authnv1.UserInfo{Username: proxyUser}, Audiences: []string{ProxyTokenAudience}},
	}
	objs := []client.Object{
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse"}},
	}
	var reviews int
	h := New(xds.NewServer(t.Context(), nil, nil), Options{})
	w := &worker{hub: h, name: "member-1", cl: member(t, tokens, &reviews, objs...), pushed: make(chan struct{})}
	h.clusters["member-1"] = w
	a := NewProxyAuth(h)
	// The member confirms the token once, before the requests that wait:
	// they then read the cached answer.
	if err := a.Authorize(id(good), node, xds.TableType, []string{node}); err != nil {
		t.Fatal(err)
	}

	decided := make(chan error, 2)
	go func() { decided <- a.Authorize(id(good), node, xds.KeyPairType, []string{"member-1/infra/shared-tls"}) }()
	go func() { decided <- a.Authorize(id(good), node, xds.KeyPairType, []string{"member-1/infra/other-tls"}) }()
	select {
	case err := <-decided:
		t.Fatalf("decided before the cluster's first pass: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	w.setKeys(node, map[string]bool{"member-1/infra/shared-tls": true})
	close(w.pushed)
	var allowed, refused int
	for range 2 {
		if err := <-decided; err == nil {
			allowed++
		} else if strings.Contains(err.Error(), "not named by the route table") {
			refused++
		} else {
			t.Errorf("unexpected refusal: %v", err)
		}
	}
	if allowed != 1 || refused != 1 {
		t.Errorf("after the first pass: %d allowed and %d refused; want the key pair the table names allowed and the other refused", allowed, refused)
	}
}
