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

// jwt is a token-shaped string that expires at exp; sub keeps tokens of the
// same expiry apart.
func jwt(sub string, exp time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":%q,"exp":%d}`, sub, exp.Unix()))
	return "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
}

func TestProxyAuthorization(t *testing.T) {
	proxySA := authnv1.UserInfo{Username: "system:serviceaccount:infra:gatehouse-proxy-shared"}
	tenantSA := authnv1.UserInfo{Username: "system:serviceaccount:shop:gatehouse-proxy-anything"}
	good, apiServer, tenant := jwt("good", time.Now().Add(time.Hour)), jwt("api-server", time.Now().Add(time.Hour)), jwt("tenant", time.Now().Add(time.Hour))
	tokens := map[string]authnv1.TokenReviewStatus{
		good:      {Authenticated: true, User: proxySA, Audiences: []string{ProxyTokenAudience}},
		apiServer: {Authenticated: true, User: proxySA, Audiences: []string{"https://kubernetes.default.svc"}},
		tenant:    {Authenticated: true, User: tenantSA, Audiences: []string{ProxyTokenAudience}},
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
		"member-1/infra/shared": {"member-1/infra/shared-tls": true},
	}}
	h.clusters["member-1"] = w
	a := NewProxyAuth(h)

	const node = "member-1/infra/shared"
	for _, c := range []struct {
		name, token, node, typeURL string
		names                      []string
		refused                    string // part of the error; "" allows
	}{
		{"its own table", good, node, xds.TableType, []string{node}, ""},
		{"its own key pair", good, node, xds.KeyPairType, []string{"member-1/infra/shared-tls"}, ""},
		{"unsubscribing from key pairs", good, node, xds.KeyPairType, nil, ""},
		{"tables without names", good, node, xds.TableType, nil, "must name their route table"},
		{"another table", good, node, xds.TableType, []string{"member-2/infra/shared"}, "only their own route table"},
		{"the wildcard", good, node, xds.TableType, []string{"*"}, "only their own route table"},
		{"a key pair its table does not name", good, node, xds.KeyPairType, []string{"member-2/infra/shared-tls"}, "not named by the route table"},
		{"an API-server token", apiServer, node, xds.TableType, []string{node}, "audience"},
		{"a tenant's ServiceAccount for the Gateway", tenant, node, xds.TableType, []string{node}, "may not serve Gateway infra/shared"},
		{"a tenant's ServiceAccount for a Gateway that does not exist", tenant, "member-1/shop/anything", xds.KeyPairType, nil, "does not exist"},
		{"an unknown token", "not-a-token", node, xds.TableType, []string{node}, "does not accept the token"},
		{"a cluster that is not a member", good, "member-9/infra/shared", xds.TableType, []string{"member-9/infra/shared"}, "not a member"},
		{"a node ID with an empty part", good, "member-1//shared", xds.TableType, []string{node}, "not cluster/namespace/gateway"},
		{"an unknown resource type", good, node, "type.googleapis.com/envoy.config.listener.v3.Listener", []string{node}, "not served"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := a.Authorize(c.token, c.node, c.typeURL, c.names)
			switch {
			case c.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
				t.Fatalf("got %v, want a refusal saying %q", err, c.refused)
			}
		})
	}

	t.Run("a Gateway of another class", func(t *testing.T) {
		foreign := jwt("foreign", time.Now().Add(time.Hour))
		tokens[foreign] = authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{ProxyTokenAudience},
			User: authnv1.UserInfo{Username: "system:serviceaccount:shop:gatehouse-proxy-foreign"}}
		if err := a.Authorize(foreign, "member-1/shop/foreign", xds.TableType, []string{"member-1/shop/foreign"}); err == nil || !strings.Contains(err.Error(), "does not control") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("an answer is not reused past the token's expiry", func(t *testing.T) {
		short := jwt("short", time.Now().Add(10*time.Second))
		tokens[short] = tokens[good]
		before := reviews
		_ = a.Authorize(short, node, xds.TableType, []string{node})
		_ = a.Authorize(short, node, xds.TableType, []string{node})
		if reviews != before+1 {
			t.Fatalf("%d reviews for two requests within the token's life, want 1", reviews-before)
		}
		a.now = func() time.Time { return time.Now().Add(20 * time.Second) }
		defer func() { a.now = time.Now }()
		delete(tokens, short) // expired: the member no longer accepts it
		if err := a.Authorize(short, node, xds.TableType, []string{node}); err == nil {
			t.Fatal("an expired token was still accepted from the cache")
		}
	})

	t.Run("token reviews per member are bounded", func(t *testing.T) {
		refused := 0
		for i := range 200 {
			if err := a.Authorize(fmt.Sprintf("junk-%d", i), node, xds.TableType, []string{node}); err != nil && strings.Contains(err.Error(), "too many token reviews") {
				refused++
			}
		}
		if refused == 0 {
			t.Fatal("200 unknown tokens at once all reached the member's API server")
		}
	})
}
