package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/explain"
	"github.com/gatehouse-dev/gatehouse/gatewayapi/attach"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/admission"
	policyv1 "github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// The three places that report on a route — the hub's status (translate
// with this package's pass as authorizer), the admission webhook and
// `gatehousectl explain` — must say the same thing about it. These tests
// generate random clusters and compare, route by route:
//
//   - the listeners each one finds the route attaches to, by the Gateway
//     API's rules, with the hostnames it would serve there;
//   - whether tenancy and policies refuse it: the webhook denies a route
//     exactly when status refused one of its attachments, with the same
//     words;
//   - explain's listeners against status: a parent refused for a Gateway
//     API reason has none, an accepted one has some.

// TestAttachmentAgreement checks a few hundred random clusters on every run.
func TestAttachmentAgreement(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	for seed := range uint64(n) {
		checkAgreement(t, seed)
	}
}

// FuzzAttachmentAgreement lets `make fuzz` search the seeds for a
// disagreement.
func FuzzAttachmentAgreement(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { checkAgreement(t, seed) })
}

const agreementMember = "member-1"

func checkAgreement(t *testing.T, seed uint64) {
	t.Helper()
	ctx := context.Background()
	w := randomWorld(rand.New(rand.NewPCG(seed, 7)))

	decisions := NewDecisions(w.hubClient(t), DecisionsOptions{Unassigned: w.unassigned})
	if err := decisions.Rebuild(ctx); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	in := w.input()
	pass := decisions.forPass(ctx, agreementMember, &in)
	rec := &recordingAuthorizer{pass: pass, calls: map[string][]string{}, denied: map[string][]string{}}
	in.Authorizer = rec
	out := translate.Translate(in)
	w.writeStatus(out)

	member := fake.NewClientBuilder().WithScheme(agreementScheme(t)).WithObjects(w.memberObjects()...).Build()
	a := agreement{t: t, ctx: ctx, w: w, rec: rec, member: member, decisions: decisions,
		webhook: admission.New(agreementFleet{member, decisions}, anyToken{}, agreementScheme(t), admission.Options{Controller: translate.ControllerName})}
	for _, rs := range routeSets(in, out) {
		for _, r := range rs.routes {
			a.check(fmt.Sprintf("seed %d, %s %s/%s", seed, rs.kind, r.GetNamespace(), r.GetName()), rs, r)
		}
	}
}

// agreement is one random cluster after translation, with the webhook and
// the member explain reads.
type agreement struct {
	t         *testing.T
	ctx       context.Context
	w         *world
	rec       *recordingAuthorizer
	member    client.Client
	webhook   http.Handler
	decisions *Decisions
}

// check compares what status, the webhook and explain say of route r of
// the set rs.
func (a agreement) check(where string, rs routeSet, r client.Object) {
	t, w := a.t, a.w
	t.Helper()
	key := types.NamespacedName{Namespace: r.GetNamespace(), Name: r.GetName()}

	// Which listeners, with which hostnames.
	status := a.rec.calls[rs.kind+"/"+key.String()]
	var webhookSaw []string
	for _, at := range admission.Attachments(a.ctx, a.member, translate.ControllerName, r, w.nsLabels(r.GetNamespace())) {
		webhookSaw = append(webhookSaw, attachmentKey(at.Gateway.Name, at.Listener, at.Hostnames))
	}
	if !sameSet(status, webhookSaw) {
		t.Errorf("%s: status asked about attachments %v, the webhook about %v\n%s", where, set(status), set(webhookSaw), w.describe())
	}
	rep, err := explain.Cluster(a.ctx, a.member, a.decisions.Decider().Tenancy, tenancy.Cluster{Name: agreementMember}, rs.kind, key)
	if err != nil {
		t.Fatalf("%s: explain: %v", where, err)
	}
	var explained []string
	for _, p := range rep.Parents {
		explained = append(explained, p.Listeners...)
	}
	if !sameSet(listenerNames(status), explained) {
		t.Errorf("%s: status attaches to listeners %v, explain finds %v\n%s", where, set(listenerNames(status)), set(explained), w.describe())
	}
	checkParents(t, where, w, r, rep, rs.ours[key])

	// Tenancy and policies.
	if len(status) == 0 {
		return
	}
	allowed, message := w.review(t, a.webhook, rs.kind, r)
	refused := a.rec.denied[rs.kind+"/"+key.String()]
	if allowed != (len(refused) == 0) {
		t.Errorf("%s: the webhook allowed=%v (%s); status refused %d of its %d attachments: %v", where, allowed, message, len(refused), len(status), refused)
	}
	for _, m := range refused {
		if !strings.Contains(message, strings.Trim(m, "[]")) && !strings.Contains(m, message) {
			t.Errorf("%s: status says %q, the webhook %q", where, m, message)
		}
	}
}

// checkParents holds explain's listeners to the route's status, parentRef
// by parentRef.
func checkParents(t *testing.T, where string, w *world, r client.Object, rep *explain.ClusterReport, parents []gwv1.RouteParentStatus) {
	t.Helper()
	_, refs, _ := attach.RouteOf(r)
	for i, p := range refs {
		st := statusFor(r.GetNamespace(), p, parents)
		if st == nil || i >= len(rep.Parents) {
			continue
		}
		c := meta.FindStatusCondition(st.Conditions, string(gwv1.RouteConditionAccepted))
		got := rep.Parents[i].Listeners
		switch {
		case c.Status == metav1.ConditionTrue && len(got) == 0:
			t.Errorf("%s: spec.parentRefs[%d] is accepted (%s), explain finds no listener\n%s", where, i, c.Message, w.describe())
		case gatewayAPIReason(c.Reason) && len(got) > 0:
			t.Errorf("%s: spec.parentRefs[%d] is refused (%s: %s), explain finds listeners %v\n%s", where, i, c.Reason, c.Message, got, w.describe())
		}
	}
}

func gatewayAPIReason(r string) bool {
	switch gwv1.RouteConditionReason(r) {
	case gwv1.RouteReasonNoMatchingParent, gwv1.RouteReasonNotAllowedByListeners, gwv1.RouteReasonNoMatchingListenerHostname:
		return true
	}
	return false
}

// statusFor finds our status entry of parentRef p.
func statusFor(ns string, p gwv1.ParentReference, parents []gwv1.RouteParentStatus) *gwv1.RouteParentStatus {
	norm := func(p gwv1.ParentReference) string {
		kind, pns, section, port := "Gateway", ns, "", int32(0)
		if p.Kind != nil {
			kind = string(*p.Kind)
		}
		if p.Namespace != nil && *p.Namespace != "" {
			pns = string(*p.Namespace)
		}
		if p.SectionName != nil {
			section = string(*p.SectionName)
		}
		if p.Port != nil {
			port = *p.Port
		}
		return fmt.Sprintf("%s/%s/%s/%s/%d", kind, pns, p.Name, section, port)
	}
	for i := range parents {
		if norm(parents[i].ParentRef) == norm(p) {
			return &parents[i]
		}
	}
	return nil
}

// recordingAuthorizer passes translate's questions to the hub's pass and
// keeps them: attachments asked about, and the denials given, per route.
type recordingAuthorizer struct {
	pass   *pass
	calls  map[string][]string
	denied map[string][]string
}

func (a *recordingAuthorizer) AuthorizeAttachment(req translate.AttachmentRequest) translate.Decision {
	d := a.pass.AuthorizeAttachment(req)
	k := req.Kind + "/" + req.Route.GetNamespace() + "/" + req.Route.GetName()
	a.calls[k] = append(a.calls[k], attachmentKey(req.Gateway.Name, req.Listener, req.Hostnames))
	if !d.Allowed {
		a.denied[k] = append(a.denied[k], d.Message)
	}
	return d
}

func (a *recordingAuthorizer) AuthorizeListenerSet(ls *gwv1.ListenerSet, gw *gwv1.Gateway) translate.Decision {
	return a.pass.AuthorizeListenerSet(ls, gw)
}

func attachmentKey(gateway string, listener gwv1.SectionName, hosts []string) string {
	hs := slices.Clone(hosts)
	slices.Sort(hs)
	return fmt.Sprintf("%s/%s[%s]", gateway, listener, strings.Join(hs, ","))
}

func listenerNames(keys []string) []string {
	var out []string
	for _, k := range keys {
		_, rest, _ := strings.Cut(k, "/")
		name, _, _ := strings.Cut(rest, "[")
		out = append(out, name)
	}
	return out
}

func set(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

func sameSet(a, b []string) bool { return slices.Equal(set(a), set(b)) }

type agreementFleet struct {
	member    client.Reader
	decisions *Decisions
}

func (f agreementFleet) Cluster(name string) (client.Reader, tenancy.Cluster, bool) {
	return f.member, tenancy.Cluster{Name: name}, name == agreementMember
}

func (f agreementFleet) Decider() *policy.Decider { return f.decisions.Decider() }

type anyToken struct{}

func (anyToken) Authentic(string, string) bool { return true }

func agreementScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1beta1.Install, tenancyv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// review asks the webhook about creating r, as its member's API server would.
func (w *world) review(t *testing.T, h http.Handler, kind string, r client.Object) (bool, string) {
	t.Helper()
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("review-" + r.GetName()),
			Kind:      metav1.GroupVersionKind{Group: gwv1.GroupName, Version: "v1", Kind: kind},
			Resource:  metav1.GroupVersionResource{Group: gwv1.GroupName, Version: "v1", Resource: strings.ToLower(kind) + "s"},
			Namespace: r.GetNamespace(), Name: r.GetName(), Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, admission.Path(agreementMember, "token"), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp admissionv1.AdmissionReview
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &resp) != nil || resp.Response == nil {
		t.Fatalf("webhook answered %d: %s", rec.Code, rec.Body.String())
	}
	msg := ""
	if resp.Response.Result != nil {
		msg = resp.Response.Result.Message
	}
	return resp.Response.Allowed, msg
}

// world is one random member cluster and the hub's Tenants and policies.
type world struct {
	rng        *rand.Rand
	classes    []*gwv1.GatewayClass
	namespaces []*corev1.Namespace
	services   []*corev1.Service
	gateways   []*gwv1.Gateway
	sets       []*gwv1.ListenerSet
	http       []*gwv1.HTTPRoute
	grpc       []*gwv1.GRPCRoute
	tls        []*gwv1.TLSRoute
	tcp        []*gwv1.TCPRoute
	udp        []*gwv1.UDPRoute
	tenants    []*tenancyv1.Tenant
	policies   []*policyv1.RoutePolicy
	unassigned tenancy.Unassigned
}

var (
	listenerHostnames = []string{"", "", "*.example.com", "a.example.com", "b.example.com", "*.a.example.com", "x.example.org"}
	routeHostnames    = []string{"a.example.com", "b.example.com", "*.example.com", "c.a.example.com", "x.example.org", "y.example.org"}
	namespaceNames    = []string{"infra", "shop", "pay", "misc"}
)

// denyLabelled refuses routes labelled deny=yes.
const denyLabelled = `package agreement.deny

violation contains {"msg": "routes labelled deny=yes are refused: remove the label"} if {
	input.review.object.metadata.labels.deny == "yes"
}
`

func randomWorld(rng *rand.Rand) *world {
	w := &world{rng: rng}
	w.classes = []*gwv1.GatewayClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/other"}},
	}
	for _, ns := range namespaceNames {
		labels := map[string]string{corev1.LabelMetadataName: ns}
		if ns != "misc" {
			labels["team"] = ns
		}
		w.namespaces = append(w.namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}})
		w.services = append(w.services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	}
	for i := range 1 + rng.IntN(2) {
		w.gateways = append(w.gateways, w.gateway(i))
	}
	for i := range rng.IntN(3) {
		w.sets = append(w.sets, w.listenerSet(i))
	}
	for i := range 2 + rng.IntN(5) {
		w.route(i)
	}
	w.tenancy()
	return w
}

func (w *world) pick(n int) int { return w.rng.IntN(n) }

func (w *world) gateway(i int) *gwv1.Gateway {
	class := "gatehouse"
	if w.pick(10) == 0 {
		class = "other"
	}
	gw := &gwv1.Gateway{ObjectMeta: w.meta("infra", fmt.Sprintf("gw%d", i), i), Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(class)}}
	if w.pick(6) == 0 {
		// Not accepted: InvalidParameters.
		gw.Spec.Infrastructure = &gwv1.GatewayInfrastructure{ParametersRef: &gwv1.LocalParametersReference{Kind: "ConfigMap", Name: "missing"}}
	}
	switch w.pick(4) {
	case 1:
		gw.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}
	case 2:
		gw.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr.To(gwv1.NamespacesFromSame)}}
	case 3:
		gw.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr.To(gwv1.NamespacesFromSelector),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "shop"}}}}
	}
	for j := range 1 + w.pick(4) {
		name, port, proto, host, tls, allowed := w.listener(fmt.Sprintf("gw%d-l%d", i, j))
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{Name: name, Port: port, Protocol: proto, Hostname: host, TLS: tls, AllowedRoutes: allowed})
	}
	return gw
}

func (w *world) listenerSet(i int) *gwv1.ListenerSet {
	ns := []string{"infra", "shop"}[w.pick(2)]
	ls := &gwv1.ListenerSet{ObjectMeta: w.meta(ns, fmt.Sprintf("ls%d", i), 10+i), Spec: gwv1.ListenerSetSpec{
		ParentRef: gwv1.ParentGatewayReference{Name: gwv1.ObjectName(fmt.Sprintf("gw%d", w.pick(2))), Namespace: ptr.To(gwv1.Namespace("infra"))}}}
	for j := range 1 + w.pick(2) {
		name, port, proto, host, tls, allowed := w.listener(fmt.Sprintf("ls%d-l%d", i, j))
		ls.Spec.Listeners = append(ls.Spec.Listeners, gwv1.ListenerEntry{Name: name, Port: port, Protocol: proto, Hostname: host, TLS: tls, AllowedRoutes: allowed})
	}
	return ls
}

func (w *world) listener(name string) (gwv1.SectionName, gwv1.PortNumber, gwv1.ProtocolType, *gwv1.Hostname, *gwv1.ListenerTLSConfig, *gwv1.AllowedRoutes) {
	var (
		port  gwv1.PortNumber
		proto gwv1.ProtocolType
		tls   *gwv1.ListenerTLSConfig
	)
	missingCert := []gwv1.SecretObjectReference{{Name: "missing-cert"}}
	switch p := w.pick(12); {
	case p < 6:
		port, proto = []gwv1.PortNumber{80, 8080}[w.pick(2)], gwv1.HTTPProtocolType
	case p < 8:
		port, proto, tls = 443, gwv1.HTTPSProtocolType, &gwv1.ListenerTLSConfig{CertificateRefs: missingCert}
	case p < 10:
		// TLS shares its port with HTTPS by SNI.
		port, proto = []gwv1.PortNumber{443, 8443}[w.pick(2)], gwv1.TLSProtocolType
		tls = &gwv1.ListenerTLSConfig{Mode: ptr.To(gwv1.TLSModePassthrough)}
		if w.pick(3) == 0 {
			tls = &gwv1.ListenerTLSConfig{Mode: ptr.To(gwv1.TLSModeTerminate), CertificateRefs: missingCert}
		}
	case p < 11:
		// TCP takes a port alone: 80 clashes with the HTTP listeners.
		port, proto = []gwv1.PortNumber{5432, 80}[w.pick(2)], gwv1.TCPProtocolType
	default:
		// UDP has sockets of its own: 5432 is no clash with TCP.
		port, proto = []gwv1.PortNumber{53, 5432}[w.pick(2)], gwv1.UDPProtocolType
	}
	var host *gwv1.Hostname
	if h := listenerHostnames[w.pick(len(listenerHostnames))]; h != "" && proto != gwv1.TCPProtocolType && proto != gwv1.UDPProtocolType {
		host = ptr.To(gwv1.Hostname(h))
	}
	var allowed *gwv1.AllowedRoutes
	if w.pick(5) > 0 {
		allowed = &gwv1.AllowedRoutes{}
		from := []gwv1.FromNamespaces{gwv1.NamespacesFromSame, gwv1.NamespacesFromAll, gwv1.NamespacesFromAll, gwv1.NamespacesFromSelector, gwv1.NamespacesFromSelector}[w.pick(5)]
		allowed.Namespaces = &gwv1.RouteNamespaces{From: &from}
		if from == gwv1.NamespacesFromSelector {
			switch w.pick(4) {
			case 0, 1:
				allowed.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": []string{"shop", "pay"}[w.pick(2)]}}
			case 2:
				allowed.Namespaces.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn}}}
			}
		}
		if w.pick(3) == 0 {
			kind := []gwv1.Kind{"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"}[w.pick(5)]
			allowed.Kinds = []gwv1.RouteGroupKind{{Kind: kind}}
		}
	}
	return gwv1.SectionName(name), port, proto, host, tls, allowed
}

func (w *world) route(i int) {
	ns := namespaceNames[w.pick(len(namespaceNames))]
	meta := w.meta(ns, fmt.Sprintf("r%d", i), 20+i)
	if w.pick(5) == 0 {
		meta.Labels = map[string]string{"deny": "yes"}
	}
	var hosts []gwv1.Hostname
	for range w.pick(3) {
		if h := gwv1.Hostname(routeHostnames[w.pick(len(routeHostnames))]); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	kind, ref := w.routeKind()
	var parents []gwv1.ParentReference
	if ref != nil {
		parents = append(parents, *ref)
	}
	for range 1 + w.pick(2) - len(parents) {
		parents = append(parents, w.parentRef())
	}
	common := gwv1.CommonRouteSpec{ParentRefs: parents}
	backend := gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "web", Port: ptr.To(gwv1.PortNumber(80))}}
	switch kind {
	case "HTTPRoute":
		w.http = append(w.http, &gwv1.HTTPRoute{ObjectMeta: meta, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: common, Hostnames: hosts,
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: backend}}}}}})
	case "GRPCRoute":
		w.grpc = append(w.grpc, &gwv1.GRPCRoute{ObjectMeta: meta, Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: common, Hostnames: hosts,
			Rules: []gwv1.GRPCRouteRule{{BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: backend}}}}}})
	case "TLSRoute":
		// A TLSRoute names at least one SNI name.
		if len(hosts) == 0 {
			hosts = []gwv1.Hostname{gwv1.Hostname(routeHostnames[w.pick(len(routeHostnames))])}
		}
		w.tls = append(w.tls, &gwv1.TLSRoute{ObjectMeta: meta, Spec: gwv1.TLSRouteSpec{CommonRouteSpec: common, Hostnames: hosts,
			Rules: []gwv1.TLSRouteRule{{BackendRefs: []gwv1.BackendRef{backend}}}}})
	case "TCPRoute":
		w.tcp = append(w.tcp, &gwv1.TCPRoute{ObjectMeta: meta, Spec: gwv1.TCPRouteSpec{CommonRouteSpec: common,
			Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{backend}}}}})
	default:
		w.udp = append(w.udp, &gwv1.UDPRoute{ObjectMeta: meta, Spec: gwv1.UDPRouteSpec{CommonRouteSpec: common,
			Rules: []gwv1.UDPRouteRule{{BackendRefs: []gwv1.BackendRef{backend}}}}})
	}
}

// routeKind picks a route's kind: mostly one that a listener of the
// world takes, so that every kind is attached often enough to compare,
// and then sometimes a parentRef to that very listener.
func (w *world) routeKind() (string, *gwv1.ParentReference) {
	kinds := []string{"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"}
	type listener struct {
		gateway  string
		name     gwv1.SectionName
		protocol gwv1.ProtocolType
	}
	var ls []listener
	for _, gw := range w.gateways {
		for _, l := range gw.Spec.Listeners {
			ls = append(ls, listener{gw.Name, l.Name, l.Protocol})
		}
	}
	if len(ls) == 0 || w.pick(3) == 0 {
		return kinds[w.pick(len(kinds))], nil
	}
	l := ls[w.pick(len(ls))]
	var ref *gwv1.ParentReference
	if w.pick(2) == 0 {
		ref = &gwv1.ParentReference{Name: gwv1.ObjectName(l.gateway), Namespace: ptr.To(gwv1.Namespace("infra")), SectionName: ptr.To(l.name)}
	}
	switch l.protocol {
	case gwv1.TLSProtocolType:
		return "TLSRoute", ref
	case gwv1.TCPProtocolType:
		return "TCPRoute", ref
	case gwv1.UDPProtocolType:
		return "UDPRoute", ref
	}
	return kinds[w.pick(2)], ref
}

func (w *world) parentRef() gwv1.ParentReference {
	var p gwv1.ParentReference
	var names []gwv1.SectionName
	if len(w.sets) > 0 && w.pick(3) == 0 {
		ls := w.sets[w.pick(len(w.sets))]
		p = gwv1.ParentReference{Kind: ptr.To(gwv1.Kind("ListenerSet")), Name: gwv1.ObjectName(ls.Name), Namespace: ptr.To(gwv1.Namespace(ls.Namespace))}
		for _, l := range ls.Spec.Listeners {
			names = append(names, l.Name)
		}
	} else {
		i := w.pick(len(w.gateways) + 1)
		p = gwv1.ParentReference{Name: gwv1.ObjectName(fmt.Sprintf("gw%d", i)), Namespace: ptr.To(gwv1.Namespace("infra"))}
		if i < len(w.gateways) {
			for _, l := range w.gateways[i].Spec.Listeners {
				names = append(names, l.Name)
			}
		}
	}
	if w.pick(5) < 2 {
		names = append(names, "nope")
		p.SectionName = ptr.To(names[w.pick(len(names))])
	}
	if w.pick(5) == 0 {
		p.Port = ptr.To([]gwv1.PortNumber{80, 8080, 443, 5432, 53, 9999}[w.pick(6)])
	}
	return p
}

// tenancy delegates some namespaces and hostnames, and maybe refuses
// namespaces of no tenant.
func (w *world) tenancy() {
	w.unassigned = []tenancy.Unassigned{tenancy.Platform, tenancy.Deny}[w.pick(2)]
	if w.pick(4) > 0 {
		w.tenants = append(w.tenants, &tenancyv1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop-team"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"shop"}}},
			Hostnames:  []gwv1.Hostname{[]gwv1.Hostname{"*.example.com", "a.example.com", "*.a.example.com"}[w.pick(3)]},
		}})
	}
	if w.pick(2) > 0 {
		t := &tenancyv1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "pay-team"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"pay"}}},
			Hostnames:  []gwv1.Hostname{"b.example.com", "*.example.org"},
		}}
		if w.pick(2) == 0 {
			t.Spec.Gateways = []tenancyv1.GatewayDelegation{{Namespace: "infra", Name: "gw0"}}
		}
		w.tenants = append(w.tenants, t)
	}
	if w.pick(2) == 0 {
		w.policies = append(w.policies, &policyv1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-labelled", Generation: 1},
			Spec: policyv1.RoutePolicySpec{Rego: denyLabelled, Enforcement: policyv1.Deny}})
	}
}

func (w *world) meta(ns, name string, age int) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, UID: types.UID(ns + "-" + name),
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, age, 0, time.UTC))}
}

func (w *world) hubClient(t *testing.T) client.Client {
	return fake.NewClientBuilder().WithScheme(agreementScheme(t)).WithObjects(append(objects(w.tenants), objects(w.policies)...)...).Build()
}

func (w *world) input() translate.Input {
	return translate.Input{GatewayClasses: w.classes, Gateways: w.gateways, ListenerSets: w.sets, HTTPRoutes: w.http, GRPCRoutes: w.grpc,
		TLSRoutes: w.tls, TCPRoutes: w.tcp, UDPRoutes: w.udp, Namespaces: w.namespaces, Services: w.services}
}

// writeStatus stores what the hub would write.
func (w *world) writeStatus(out translate.Output) {
	for _, gw := range w.gateways {
		if s := out.Gateways[client.ObjectKeyFromObject(gw)]; s != nil {
			gw.Status = *s
		}
	}
	for _, ls := range w.sets {
		if s := out.ListenerSets[client.ObjectKeyFromObject(ls)]; s != nil {
			ls.Status = *s
		}
	}
	for _, rs := range routeSets(w.input(), out) {
		for _, r := range rs.routes {
			rs.setParents(r, rs.ours[client.ObjectKeyFromObject(r)])
		}
	}
}

func (w *world) memberObjects() []client.Object {
	return slices.Concat(objects(w.classes), objects(w.namespaces), objects(w.services), w.gatewaysAndSets(), w.routes())
}

// routes are the routes of every kind.
func (w *world) routes() []client.Object {
	var out []client.Object
	for _, rs := range routeSets(w.input(), translate.Output{}) {
		out = append(out, rs.routes...)
	}
	return out
}

func (w *world) gatewaysAndSets() []client.Object {
	return append(objects(w.gateways), objects(w.sets)...)
}

func (w *world) nsLabels(ns string) map[string]string {
	for _, n := range w.namespaces {
		if n.Name == ns {
			return n.Labels
		}
	}
	return nil
}

// describe prints the world for a failure: the cluster as YAML-ish JSON.
func (w *world) describe() string {
	var b strings.Builder
	for _, gw := range w.gateways {
		spec, _ := json.Marshal(gw.Spec)
		fmt.Fprintf(&b, "  Gateway %s/%s: %s\n", gw.Namespace, gw.Name, spec)
	}
	for _, ls := range w.sets {
		spec, _ := json.Marshal(ls.Spec)
		fmt.Fprintf(&b, "  ListenerSet %s/%s: %s\n", ls.Namespace, ls.Name, spec)
	}
	for _, rs := range routeSets(w.input(), translate.Output{}) {
		for _, r := range rs.routes {
			route, parents, _ := attach.RouteOf(r)
			spec, _ := json.Marshal(map[string]any{"labels": r.GetLabels(), "parentRefs": parents, "hostnames": route.Hostnames})
			fmt.Fprintf(&b, "  %s %s/%s: %s\n", rs.kind, r.GetNamespace(), r.GetName(), spec)
		}
	}
	for _, t := range w.tenants {
		spec, _ := json.Marshal(t.Spec)
		fmt.Fprintf(&b, "  Tenant %s: %s\n", t.Name, spec)
	}
	fmt.Fprintf(&b, "  unassigned: %s, policies: %d\n", w.unassigned, len(w.policies))
	return b.String()
}
