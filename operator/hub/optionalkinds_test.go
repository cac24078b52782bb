package hub

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestStreamRouteKindsInstalledLater runs against a real API server whose
// Gateway API CRDs lack TLSRoute, TCPRoute and UDPRoute, read through the
// cache the hub keeps of every member: passes work and write status; once
// the TCPRoute CRD is installed, the next look reads TCPRoutes and writes
// their status, and a change to one starts a pass of its own — no restart.
func TestStreamRouteKindsInstalledLater(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a control plane (-short)")
	}
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	fleet, err := env.Start(ctx, env.Options{WithoutCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	crds := gatewayAPICRDs(t)
	var older []string
	for _, f := range crds {
		if !strings.Contains(f, "tlsroutes") && !strings.Contains(f, "tcproutes") && !strings.Contains(f, "udproutes") {
			older = append(older, f)
		}
	}
	if _, err := envtest.InstallCRDs(fleet.Hub.Config, envtest.CRDInstallOptions{Paths: older}); err != nil {
		t.Fatal(err)
	}

	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1beta1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	member, err := cluster.New(fleet.Hub.Config, func(o *cluster.Options) { o.Scheme = s; ClusterCache(o) })
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = member.Start(ctx) }()
	direct, err := client.New(fleet.Hub.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	all := &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "infra"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse",
			Listeners: []gwv1.Listener{
				{Name: "http", Port: 8080, Protocol: gwv1.HTTPProtocolType, AllowedRoutes: all},
				{Name: "tcp-5432", Port: 5432, Protocol: gwv1.TCPProtocolType, AllowedRoutes: all},
			}}},
		&gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Namespace: ptr.To[gwv1.Namespace]("infra"), Name: "shared", SectionName: ptr.To[gwv1.SectionName]("http")}}}}},
	} {
		if err := direct.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if !member.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the member's cache did not sync")
	}

	w := streamWorker(t, member)
	accepted := func(obj client.Object, parents func() []gwv1.RouteParentStatus) {
		t.Helper()
		for ctx.Err() == nil {
			if err := w.sync(ctx); err != nil {
				t.Fatalf("a pass: %v", err)
			}
			if err := direct.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				t.Fatal(err)
			}
			for _, p := range parents() {
				if p.ControllerName == translate.ControllerName && meta.IsStatusConditionTrue(p.Conditions, "Accepted") {
					return
				}
			}
			time.Sleep(100 * time.Millisecond) // the cache catches up with what was just created
		}
		t.Fatalf("%s/%s was never accepted", obj.GetNamespace(), obj.GetName())
	}
	var web gwv1.HTTPRoute
	web.Namespace, web.Name = "shop", "web"
	accepted(&web, func() []gwv1.RouteParentStatus { return web.Status.Parents })
	if _, absent := w.optional.absent["TCPRoute"]; !absent {
		t.Fatal("the member does not serve TCPRoutes, and the worker did not notice")
	}

	tcpCRD := ""
	for _, f := range crds {
		if strings.Contains(f, "tcproutes") {
			tcpCRD = f
		}
	}
	if _, err := envtest.InstallCRDs(fleet.Hub.Config, envtest.CRDInstallOptions{Paths: []string{tcpCRD}}); err != nil {
		t.Fatal(err)
	}
	db := tcpRoute("db", "tcp-5432")
	db.Generation = 0
	if err := direct.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	w.optional.absent["TCPRoute"] = time.Now().Add(-absentRecheck) // a minute later
	accepted(db, func() []gwv1.RouteParentStatus { return db.Status.Parents })
	if _, watched := w.optional.watching["TCPRoute"]; !watched {
		t.Fatal("TCPRoutes are read, and not watched")
	}

	// A change to the TCPRoute's spec starts a pass by itself.
	for len(w.kick) > 0 {
		<-w.kick
	}
	db.Spec.Rules[0].BackendRefs[0].Port = ptr.To[gwv1.PortNumber](5433)
	if err := direct.Update(ctx, db); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.kick:
	case <-time.After(30 * time.Second):
		t.Fatal("a change to a TCPRoute started no pass")
	}
}

// gatewayAPICRDs are the Gateway API CRD files the member chart installs.
func gatewayAPICRDs(t *testing.T) []string {
	t.Helper()
	root, err := env.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "charts", "gatehouse-member", "files", "gateway-api")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		// The ValidatingAdmissionPolicy of safe upgrades is no CRD.
		if strings.HasSuffix(e.Name(), ".yaml") && !strings.Contains(e.Name(), "vap") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
