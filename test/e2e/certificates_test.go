package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

const httpsPort = 8443

func TestListenerCertificatesFromCertManager(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse", "gatehouse-proxy")
	fleet, hubClient := fleetWithCertManager(t, ctx)
	roots, err := env.CAClusterIssuer(ctx, hubClient, "ca")
	if err != nil {
		t.Fatal(err)
	}
	if err := hubClient.Create(ctx, &tenancyv1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: tenancyv1.TenantSpec{
		Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"web"}}},
		Hostnames:  []gwv1.Hostname{"*.web.apps.example.test"},
	}}); err != nil {
		t.Fatal(err)
	}

	h := startHub(t, ctx, fleet, bins["gatehouse"], "--class-issuers", "ClusterIssuer/ca,ClusterIssuer/not-there")
	m, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], []env.Tenant{{Namespace: "shop", Hostname: "a.apps.example.test", Answer: "member-1"}},
		env.ProxyOptions{Binary: bins["gatehouse-proxy"], XDSAddress: h.xdsAddr, CAFile: h.caFile, CacheDir: t.TempDir(), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	// The platform team asks for a certificate: an HTTPS listener without
	// certificateRefs, and the class's parameters naming the CA
	// ClusterIssuer. First an issuer that does not exist: the listener
	// waits and says so.
	setClassIssuer := func(name string) {
		var params corev1.ConfigMap
		if err := m.Client.Get(ctx, types.NamespacedName{Namespace: env.ParamsNamespace, Name: "gatehouse-external"}, &params); err != nil {
			t.Fatal(err)
		}
		params.Data["clusterIssuer"] = name
		if err := m.Client.Update(ctx, &params); err != nil {
			t.Fatal(err)
		}
	}
	setClassIssuer("not-there")
	var gw gwv1.Gateway
	gwKey := types.NamespacedName{Namespace: env.GatewayNamespace, Name: env.GatewayName}
	if err := m.Client.Get(ctx, gwKey, &gw); err != nil {
		t.Fatal(err)
	}
	all := gwv1.NamespacesFromAll
	gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{
		Name: "https", Port: httpsPort, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To[gwv1.Hostname]("*.apps.example.test"),
		AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}},
	})
	gw.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: &all}}
	if err := m.Client.Update(ctx, &gw); err != nil {
		t.Fatal(err)
	}

	listenerCondition := func(condType string) *metav1.Condition {
		var g gwv1.Gateway
		if m.Client.Get(ctx, gwKey, &g) != nil {
			return nil
		}
		for _, l := range g.Status.Listeners {
			if l.Name == "https" {
				return meta.FindStatusCondition(l.Conditions, condType)
			}
		}
		return nil
	}
	t.Run("while the certificate is not Ready, the listener says why", func(t *testing.T) {
		waitFor(t, 30*time.Second, "https ResolvedRefs=False CertificatePending", func() bool {
			c := listenerCondition("ResolvedRefs")
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == string(certificates.ReasonCertificatePending) &&
				strings.Contains(c.Message, "ClusterIssuer not-there") && strings.Contains(c.Message, "is not Ready")
		})
		if c := listenerCondition("Programmed"); c == nil || c.Status != metav1.ConditionFalse {
			t.Errorf("https Programmed = %+v, want False", c)
		}
		setClassIssuer("ca")
	})

	certKey := types.NamespacedName{Namespace: certificates.Namespace("member-1"), Name: "gw.infra.shared.https"}
	addr := fmt.Sprintf("10.244.1.10:%d", httpsPort)
	var firstSerial string
	var keepAlive *http.Client
	t.Run("the hub has cert-manager issue the listener's certificate and the proxy serves it", func(t *testing.T) {
		waitFor(t, 60*time.Second, "the Certificate on the hub to be Ready", func() bool {
			var c cmv1.Certificate
			if hubClient.Get(ctx, certKey, &c) != nil {
				return false
			}
			for _, cond := range c.Status.Conditions {
				if cond.Type == cmv1.CertificateConditionReady && cond.Status == cmmeta.ConditionTrue {
					return slices0(c.Spec.DNSNames) == "*.apps.example.test"
				}
			}
			return false
		})
		waitFor(t, 30*time.Second, "the https listener to be Programmed", func() bool {
			var g gwv1.Gateway
			if m.Client.Get(ctx, gwKey, &g) != nil {
				return false
			}
			for _, l := range g.Status.Listeners {
				if l.Name == "https" {
					c := meta.FindStatusCondition(l.Conditions, "Programmed")
					r := meta.FindStatusCondition(l.Conditions, "ResolvedRefs")
					return c != nil && c.Status == metav1.ConditionTrue && r != nil && r.Status == metav1.ConditionTrue
				}
			}
			return false
		})
		keepAlive = tlsClient(roots)
		waitFor(t, 30*time.Second, "a handshake trusting only the CA", func() bool {
			body, serial, _, err := tlsGet(keepAlive, addr, "a.apps.example.test")
			firstSerial = serial
			return err == nil && body == "member-1"
		})
	})

	t.Run("a renewal is served to new handshakes; an open connection keeps working", func(t *testing.T) {
		if keepAlive == nil {
			t.Skip("no certificate was served")
		}
		var c cmv1.Certificate
		if err := hubClient.Get(ctx, certKey, &c); err != nil {
			t.Fatal(err)
		}
		if err := hubClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: certKey.Namespace, Name: c.Spec.SecretName}}); err != nil {
			t.Fatal(err)
		}
		fresh := tlsClient(roots)
		var newSerial string
		waitFor(t, 90*time.Second, "a new serial on a new handshake", func() bool {
			body, serial, _, err := tlsGet(fresh, addr, "a.apps.example.test")
			fresh.CloseIdleConnections()
			newSerial = serial
			return err == nil && body == "member-1" && serial != firstSerial
		})
		body, serial, reused, err := tlsGet(keepAlive, addr, "a.apps.example.test")
		if err != nil || body != "member-1" {
			t.Fatalf("the connection opened before the renewal: %q, %v", body, err)
		}
		if !reused || serial != firstSerial {
			t.Errorf("the request did not travel over the old connection (reused %v, serial %s, first %s)", reused, serial, firstSerial)
		}
		t.Logf("serial before %s, after %s", firstSerial, newSerial)
	})

	t.Run("a tenant's ListenerSet outside its delegation gets no certificate", func(t *testing.T) {
		ls := &gwv1.ListenerSet{
			ObjectMeta: metav1.ObjectMeta{Name: "grab", Namespace: "web", Annotations: map[string]string{certificates.AnnotationClusterIssuer: "ca"}},
			Spec: gwv1.ListenerSetSpec{
				ParentRef: gwv1.ParentGatewayReference{Name: env.GatewayName, Namespace: ptr.To[gwv1.Namespace](env.GatewayNamespace)},
				Listeners: []gwv1.ListenerEntry{{Name: "tls", Port: 9443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To[gwv1.Hostname]("pay.apps.example.test")}},
			},
		}
		if err := m.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}); err != nil {
			t.Fatal(err)
		}
		if err := m.Client.Create(ctx, ls); err != nil {
			t.Fatal(err)
		}
		var msg string
		waitFor(t, 30*time.Second, "the ListenerSet to be refused", func() bool {
			var got gwv1.ListenerSet
			if m.Client.Get(ctx, types.NamespacedName{Namespace: "web", Name: "grab"}, &got) != nil {
				return false
			}
			c := meta.FindStatusCondition(got.Status.Conditions, "Accepted")
			if c == nil {
				return false
			}
			msg = c.Message
			return c.Status == metav1.ConditionFalse && c.Reason == "HostnameNotDelegated"
		})
		if !strings.Contains(msg, `spec.listeners[0].hostname: Forbidden: "pay.apps.example.test" is not delegated to tenant "web" (delegated: *.web.apps.example.test)`) {
			t.Errorf("condition message: %s", msg)
		}
		time.Sleep(2 * time.Second)
		var list cmv1.CertificateList
		if err := hubClient.List(ctx, &list, client.InNamespace(certKey.Namespace)); err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Items {
			if strings.HasPrefix(c.Name, "ls.") {
				t.Errorf("a Certificate was made for the refused ListenerSet: %s %v", c.Name, c.Spec.DNSNames)
			}
		}
	})

	t.Run("no Secret holding a private key exists in the member", func(t *testing.T) {
		var secrets corev1.SecretList
		if err := m.Client.List(ctx, &secrets); err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets.Items {
			for k, v := range sec.Data {
				if k == corev1.TLSPrivateKeyKey || strings.Contains(string(v), "PRIVATE KEY") {
					t.Errorf("Secret %s/%s in the member holds a private key (%s)", sec.Namespace, sec.Name, k)
				}
			}
		}
	})
}

// fleetWithCertManager starts a hub running cert-manager and one member,
// and returns a hub client that knows cert-manager's types.
func fleetWithCertManager(t *testing.T, ctx context.Context) (*env.Fleet, client.Client) {
	t.Helper()
	fleet, err := env.Start(ctx, env.Options{Members: 1, CertManager: true, AdvertiseAddress: env.AdvertiseAddress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Stop() })
	s := env.Scheme()
	if err := cmv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	hubClient, err := client.New(fleet.Hub.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return fleet, hubClient
}

func slices0(s []string) string {
	if len(s) != 1 {
		return fmt.Sprint(s)
	}
	return s[0]
}

// tlsClient trusts roots only and keeps one connection alive.
func tlsClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}, MaxConnsPerHost: 1, IdleConnTimeout: time.Minute,
	}}
}

// tlsGet asks addr for host over TLS and returns the body, the serial of
// the certificate the connection carries and whether it was reused.
func tlsGet(c *http.Client, addr, host string) (body, serial string, reused bool, err error) {
	req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
	req.Host = host
	c.Transport.(*http.Transport).TLSClientConfig.ServerName = host
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
	resp, err := c.Do(req)
	if err != nil {
		return "", "", false, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		serial = resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	return string(b), serial, reused, nil
}

// TestCertificatesFollowTenancy acts as a tenant and as a member admin who
// each ask the hub for a certificate that is not theirs. Each attack used to
// get a cert-manager Certificate on the hub (and so a key pair for the
// attacker's proxies); now the listener says why not and no Certificate
// exists, while a tenant's legitimate listener, in the same pass, gets one.
func TestCertificatesFollowTenancy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse")
	fleet, hubClient := fleetWithCertManager(t, ctx)
	// The platform's CA for listeners, and the internal mTLS CA no tenant
	// may use.
	for _, issuer := range []string{"ca", "internal-mtls"} {
		if _, err := env.CAClusterIssuer(ctx, hubClient, issuer); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range []*tenancyv1.Tenant{
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"web"}}}, Hostnames: []gwv1.Hostname{"*.apps.example.test"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "payments"}, Spec: tenancyv1.TenantSpec{
			Namespaces: []tenancyv1.NamespaceDelegation{{Names: []string{"payments"}}}, Hostnames: []gwv1.Hostname{"pay.apps.example.test"}}},
	} {
		if err := hubClient.Create(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	startHub(t, ctx, fleet, bins["gatehouse"], "--class-issuers", "ClusterIssuer/ca")
	m, err := env.SetUpSharedGateway(ctx, 1, fleet.Members[0], nil, env.ProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	member := m.Client

	// The platform team's class issues from "ca"; the shared Gateway takes
	// ListenerSets from every namespace.
	var params corev1.ConfigMap
	if err := member.Get(ctx, types.NamespacedName{Namespace: env.ParamsNamespace, Name: "gatehouse-external"}, &params); err != nil {
		t.Fatal(err)
	}
	params.Data["clusterIssuer"] = "ca"
	if err := member.Update(ctx, &params); err != nil {
		t.Fatal(err)
	}
	var shared gwv1.Gateway
	if err := member.Get(ctx, types.NamespacedName{Namespace: env.GatewayNamespace, Name: env.GatewayName}, &shared); err != nil {
		t.Fatal(err)
	}
	shared.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr.To(gwv1.NamespacesFromAll)}}
	if err := member.Update(ctx, &shared); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"web", "payments", "admin"} {
		if err := member.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	// (4) A member admin's own GatewayClass, whose parameters (in the
	// member) name the internal CA the hub does not offer to classes.
	adminParams := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "admins-params", Namespace: env.ParamsNamespace}, Data: maps.Clone(params.Data)}
	adminParams.Data["clusterIssuer"] = "internal-mtls"
	adminClass := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "admins-class"}, Spec: gwv1.GatewayClassSpec{
		ControllerName: translate.ControllerName, ParametersRef: &gwv1.ParametersReference{
			Kind: "ConfigMap", Name: adminParams.Name, Namespace: ptr.To(gwv1.Namespace(env.ParamsNamespace))}}}
	for _, o := range []client.Object{adminParams, adminClass} {
		if err := member.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	listenerSet := func(name, hostname string, annotations map[string]string) *gwv1.ListenerSet {
		return &gwv1.ListenerSet{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "web", Annotations: annotations},
			Spec: gwv1.ListenerSetSpec{
				ParentRef: gwv1.ParentGatewayReference{Name: env.GatewayName, Namespace: ptr.To[gwv1.Namespace](env.GatewayNamespace)},
				Listeners: []gwv1.ListenerEntry{{Name: "tls", Port: httpsPort, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To(gwv1.Hostname(hostname))}},
			},
		}
	}
	objects := []client.Object{
		// The control: a tenant's listener for its own hostname.
		listenerSet("store", "store.apps.example.test", nil),
		// (1) A tenant picks the internal mTLS CA.
		listenerSet("pick", "shop.apps.example.test", map[string]string{certificates.AnnotationClusterIssuer: "internal-mtls"}),
		// (2) A tenant's wildcard, valid for payments' hostname too.
		listenerSet("wide", "*.apps.example.test", nil),
		// (3) A member admin's own Gateway for payments' hostname.
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "own", Namespace: "admin"}, Spec: gwv1.GatewaySpec{GatewayClassName: "gatehouse",
			Listeners: []gwv1.Listener{{Name: "https", Port: httpsPort, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To[gwv1.Hostname]("pay.apps.example.test")}}}},
		// (4) ... and a Gateway of that class, for a hostname no tenant holds.
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "admin"}, Spec: gwv1.GatewaySpec{GatewayClassName: "admins-class",
			Listeners: []gwv1.Listener{{Name: "https", Port: httpsPort, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr.To[gwv1.Hostname]("mtls.admin.example.test")}}}},
	}
	for _, o := range objects {
		if err := member.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	certNamespace := certificates.Namespace("member-1")
	waitFor(t, 60*time.Second, "the tenant's own listener to get its Certificate", func() bool {
		var c cmv1.Certificate
		return hubClient.Get(ctx, types.NamespacedName{Namespace: certNamespace, Name: "ls.web.store.tls"}, &c) == nil &&
			c.Spec.IssuerRef.Name == "ca" && slices0(c.Spec.DNSNames) == "store.apps.example.test"
	})

	resolvedRefs := func(o client.Object, listener gwv1.SectionName) *metav1.Condition {
		if member.Get(ctx, client.ObjectKeyFromObject(o), o) != nil {
			return nil
		}
		var conds []metav1.Condition
		switch o := o.(type) {
		case *gwv1.ListenerSet:
			for _, l := range o.Status.Listeners {
				if l.Name == listener {
					conds = l.Conditions
				}
			}
		case *gwv1.Gateway:
			for _, l := range o.Status.Listeners {
				if l.Name == listener {
					conds = l.Conditions
				}
			}
		}
		return meta.FindStatusCondition(conds, "ResolvedRefs")
	}
	attacks := []struct {
		name        string
		object      client.Object
		listener    gwv1.SectionName
		certificate string
		reason      string
		says        []string
	}{
		{"a tenant's ListenerSet picks another ClusterIssuer", &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "pick"}}, "tls",
			"ls.web.pick.tls", "IssuerNotDelegated",
			[]string{`metadata.annotations[gatehouse.dev/cluster-issuer]: Forbidden: ClusterIssuer "internal-mtls", chosen by ListenerSet web/pick, is not delegated to tenant "web"`, `names ClusterIssuer "ca"`}},
		{"a tenant's wildcard covers another tenant's hostname", &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "wide"}}, "tls",
			"ls.web.wide.tls", "CertificateCoversOtherTenant",
			[]string{`a certificate for "*.apps.example.test" would be valid for "pay.apps.example.test", which is delegated to tenant "payments"`}},
		{"a member admin's Gateway names a tenant's hostname", &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "admin", Name: "own"}}, "https",
			"gw.admin.own.https", "HostnameOwnedByOtherTenant",
			[]string{`spec.listeners[0].hostname: Forbidden: "pay.apps.example.test" is delegated to tenant "payments"`}},
		{"a member admin's GatewayClass names the internal CA", &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "admin", Name: "mine"}}, "https",
			"gw.admin.mine.https", "IssuerNotDelegated",
			[]string{`GatewayClass "admins-class" names ClusterIssuer "internal-mtls" in its parameters, which the hub does not offer`, "offered: ClusterIssuer/ca"}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			var msg string
			waitFor(t, 30*time.Second, "the listener to say why it gets no certificate", func() bool {
				c := resolvedRefs(a.object, a.listener)
				if c == nil {
					return false
				}
				msg = c.Message
				return c.Status == metav1.ConditionFalse && c.Reason == a.reason
			})
			for _, want := range a.says {
				if !strings.Contains(msg, want) {
					t.Errorf("ResolvedRefs message does not say %s: %s", want, msg)
				}
			}
			var c cmv1.Certificate
			if err := hubClient.Get(ctx, types.NamespacedName{Namespace: certNamespace, Name: a.certificate}, &c); err == nil {
				t.Errorf("the hub keeps Certificate %s from %s %s for %v", a.certificate, c.Spec.IssuerRef.Kind, c.Spec.IssuerRef.Name, c.Spec.DNSNames)
			}
		})
	}
	t.Run("no Certificate on the hub names the internal CA or another tenant's hostname", func(t *testing.T) {
		var list cmv1.CertificateList
		if err := hubClient.List(ctx, &list, client.InNamespace(certNamespace)); err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Items {
			if c.Spec.IssuerRef.Name != "ca" || slices0(c.Spec.DNSNames) != "store.apps.example.test" {
				t.Errorf("Certificate %s: %s %s for %v", c.Name, c.Spec.IssuerRef.Kind, c.Spec.IssuerRef.Name, c.Spec.DNSNames)
			}
		}
	})
}
