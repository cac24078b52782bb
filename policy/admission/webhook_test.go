package admission_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/admission"
	policyv1 "github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/policy/rego"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// tokens is a hub that gave each member one token.
type tokens map[string]string

func (t tokens) Authentic(member, token string) bool {
	want, ok := t[member]
	return ok && token == want
}

// fleet serves two members and records which one each decision was for.
type fleet struct {
	reader  client.Reader
	decider *policy.Decider
	asked   []string
}

func (f *fleet) Cluster(name string) (client.Reader, tenancy.Cluster, bool) {
	f.asked = append(f.asked, name)
	if name != "member-1" && name != "member-2" {
		return nil, tenancy.Cluster{}, false
	}
	return f.reader, tenancy.Cluster{Name: name}, true
}

func (f *fleet) Decider() *policy.Decider { return f.decider }

// onlyAdmins denies every change not made by "admin": it shows whose
// userInfo a decision saw.
const onlyAdmins = `package p.admins

violation contains {"msg": sprintf("only admin may change routes, not %q", [input.review.userInfo.username])} if {
	input.review.userInfo.username != "admin"
}
`

func newFleet(t *testing.T, policies map[string]string) *fleet {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	reader := fake.NewClientBuilder().WithScheme(s).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}},
	).Build()
	d := &policy.Decider{Tenancy: tenancy.NewView([]*tenancyv1.Tenant{
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"web"}}}, Hostnames: []gwv1.Hostname{"*.web.example.com"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "payments"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"payments"}}}, Hostnames: []gwv1.Hostname{"shop.example.com"}}},
	}, tenancy.Platform)}
	if len(policies) > 0 {
		var rps []policyv1.RoutePolicy
		for name, src := range policies {
			rps = append(rps, policyv1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: policyv1.RoutePolicySpec{Rego: src, Enforcement: policyv1.Deny}})
		}
		loadPolicies(t, d, rps...)
	}
	return &fleet{reader: reader, decider: d}
}

// loadPolicies gives d an engine that evaluates rps.
func loadPolicies(t *testing.T, d *policy.Decider, rps ...policyv1.RoutePolicy) {
	t.Helper()
	d.Engine, d.Policies = rego.New(rego.Options{}), map[string]*policy.Policy{}
	var mods []rego.Module
	for _, rp := range rps {
		p, err := policy.NewPolicy(&rp)
		if err != nil {
			t.Fatal(err)
		}
		d.Policies[rp.Name] = p
		mods = append(mods, rego.Module{Name: rp.Name, Source: rp.Spec.Rego})
	}
	if errs := d.Engine.Load(mods); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// review is user creating, in namespace web, a route for host.
func review(t *testing.T, host, user string) []byte {
	t.Helper()
	route := &gwv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "grab"},
		Spec:       gwv1.HTTPRouteSpec{Hostnames: []gwv1.Hostname{gwv1.Hostname(host)}},
	}
	raw, err := json.Marshal(route)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "1",
			Kind:      metav1.GroupVersionKind{Group: gwv1.GroupName, Version: "v1", Kind: "HTTPRoute"},
			Resource:  metav1.GroupVersionResource{Group: gwv1.GroupName, Version: "v1", Resource: "httproutes"},
			Namespace: "web", Name: "grab", Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: user},
			Object:   runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

type answer struct {
	code int
	body string
	// review is the decoded AdmissionReview of a 200.
	review admissionv1.AdmissionReview
}

func call(t *testing.T, h http.Handler, path string, body []byte, header http.Header) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	a := answer{code: rec.Code, body: string(b)}
	if a.code == http.StatusOK {
		if err := json.Unmarshal(b, &a.review); err != nil || a.review.Response == nil {
			t.Fatalf("a 200 without an AdmissionReview response (%v): %s", err, b)
		}
	}
	return a
}

func handler(f *fleet, given tokens) http.Handler {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = gwv1.Install(s)
	return admission.New(f, given, s, admission.Options{})
}

var given = tokens{"member-1": "token-of-member-1", "member-2": "token-of-member-2"}

// grab is web taking payments' hostname: a decision names payments.
func grab(t *testing.T) []byte { return review(t, "shop.example.com", "tenant") }

func TestWebhookAnswersOnlyTheMemberItNames(t *testing.T) {
	refused := []struct {
		name, path string
	}{
		{"no token: the URL of old", "/validate/member-2"},
		{"no token, trailing slash", "/validate/member-2/"},
		{"a wrong token", "/validate/member-2/guessed"},
		{"member-1's token for member-2", "/validate/member-2/" + given["member-1"]},
		{"member-2's token with no member", "/validate//" + given["member-2"]},
		{"member-2's token for a member the hub does not serve", "/validate/member-3/" + given["member-2"]},
		{"member-2's token with more path after it", "/validate/member-2/" + given["member-2"] + "/x"},
		{"member-2's token as the member's name", "/validate/" + given["member-2"] + "/member-2"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			f := newFleet(t, nil)
			a := call(t, handler(f, given), c.path, grab(t), nil)
			if a.code != http.StatusForbidden {
				t.Errorf("HTTP %d, want 403: %s", a.code, a.body)
			}
			// The same answer whatever was wrong, and nothing of the fleet.
			if a.body != "Forbidden\n" {
				t.Errorf("body %q, want only %q", a.body, "Forbidden\n")
			}
			if len(f.asked) > 0 {
				t.Errorf("the hub was asked about %v for an unauthenticated caller", f.asked)
			}
		})
	}

	t.Run("member-2's token for member-2: the decision", func(t *testing.T) {
		f := newFleet(t, nil)
		a := call(t, handler(f, given), admission.Path("member-2", given["member-2"]), grab(t), nil)
		if a.code != http.StatusOK || a.review.Response.Allowed {
			t.Fatalf("HTTP %d allowed=%v, want a denial: %s", a.code, a.review.Response.Allowed, a.body)
		}
		want := `"shop.example.com" is delegated to tenant "payments"`
		if msg := a.review.Response.Result.Message; !strings.Contains(msg, want) {
			t.Errorf("denial %q, want it to contain %q", msg, want)
		}
		if len(f.asked) != 1 || f.asked[0] != "member-2" {
			t.Errorf("decided for clusters %v, want [member-2]", f.asked)
		}
	})
}

func TestWebhookTakesClusterAndUserOnlyFromPathAndReview(t *testing.T) {
	f := newFleet(t, map[string]string{"only-admins": onlyAdmins})
	// Whatever a caller adds besides, member-1's authenticated call is
	// decided for member-1 and for the user its API server named.
	header := http.Header{
		"Impersonate-User":    {"admin"},
		"X-Remote-User":       {"admin"},
		"X-Remote-Group":      {"system:masters"},
		"X-Gatehouse-Cluster": {"member-2"},
	}
	a := call(t, handler(f, given), admission.Path("member-1", given["member-1"])+"?cluster=member-2&user=admin&timeout=5s", review(t, "a.web.example.com", "tenant"), header)
	if a.code != http.StatusOK || a.review.Response.Allowed {
		t.Fatalf("HTTP %d allowed=%v, want a denial: %s", a.code, a.review.Response.Allowed, a.body)
	}
	if want := `only admin may change routes, not "tenant"`; !strings.Contains(a.review.Response.Result.Message, want) {
		t.Errorf("denial %q, want it to contain %q", a.review.Response.Result.Message, want)
	}
	if len(f.asked) != 1 || f.asked[0] != "member-1" {
		t.Errorf("decided for clusters %v, want [member-1]", f.asked)
	}
}
