package certificates_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestCertManagerInstalledAfterTheHub: on a hub whose API server has no
// cert-manager yet, a listener asking for a certificate says so and
// nothing is written; once cert-manager's CRDs are installed, the Issuer
// starts its controller in the running manager — no restart — and the
// listener's Certificate is created and watched.
func TestCertManagerInstalledAfterTheHub(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a control plane (-short)")
	}
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet, err := env.Start(ctx, env.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })

	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = cmv1.AddToScheme(s)
	mgr, err := manager.New(fleet.Hub.Config, manager.Options{Scheme: s, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := client.New(fleet.Hub.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(fleet.Hub.Config)
	if err != nil {
		t.Fatal(err)
	}
	iss := certificates.New(mgr.GetClient(), direct, pushed{}, nil).OfferToClasses(tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: "ca"})
	triggered, retranslated := make(chan string, 16), make(chan struct{}, 1)
	err = iss.SetupWhenServed(mgr, disco, func(cluster string) { triggered <- cluster }, func() []string { return []string{"member-1"} },
		func() { retranslated <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()

	asked := request(nil, translate.ClassParameters{ClusterIssuer: "ca"})
	p := iss.ForPass(ctx, "member-1", nil)
	res := p.ListenerCertificates(asked)
	if res.Reason != certificates.ReasonCertificatePending || !strings.Contains(res.Message, "cert-manager is not installed on the hub") {
		t.Fatalf("before cert-manager: %+v, want a pending listener naming the missing cert-manager", res)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatalf("a pass without cert-manager failed to apply: %v", err)
	}

	if _, err := envtest.InstallCRDs(fleet.Hub.Config, envtest.CRDInstallOptions{Paths: []string{certManagerCRDs(t)}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-retranslated:
	case <-ctx.Done():
		t.Fatal("the hub did not notice cert-manager's CRDs")
	}

	p = iss.ForPass(ctx, "member-1", nil)
	if res := p.ListenerCertificates(asked); strings.Contains(res.Message, "not installed") {
		t.Fatalf("after cert-manager: %+v", res)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	var cert cmv1.Certificate
	if err := direct.Get(ctx, types.NamespacedName{Namespace: certificates.Namespace("member-1"), Name: "gw.infra.shared.https"}, &cert); err != nil {
		t.Fatalf("the listener's Certificate: %v", err)
	}
	// The controller started in the running manager sees it.
	select {
	case c := <-triggered:
		if c != "member-1" {
			t.Fatalf("the certificate controller triggered cluster %q, want member-1", c)
		}
	case <-ctx.Done():
		t.Fatal("the certificate controller never saw the Certificate: it did not start")
	}
}

// certManagerCRDs is the CRD directory of the cert-manager module go.mod pins.
func certManagerCRDs(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("locating the cert-manager module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
}
