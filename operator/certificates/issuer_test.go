package certificates_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/policy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

type pushed map[string]*routetable.KeyPair

func (p pushed) SetKeyPair(kp *routetable.KeyPair) (string, error) { p[kp.Name] = kp; return "v", nil }
func (p pushed) DeleteKeyPair(name string) error                   { delete(p, name); return nil }

func keyPair(t *testing.T) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"*.apps.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k})
}

func request(annotations map[string]string, params translate.ClassParameters) translate.ListenerCertificateRequest {
	return translate.ListenerCertificateRequest{
		Gateway:  &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "shared", Annotations: annotations}},
		Listener: "https", Hostname: "*.apps.example.test", Parameters: params,
	}
}

// hubClient is a fake hub holding Certificates and Secrets.
func hubClient() client.WithWatch {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = cmv1.AddToScheme(s)
	return fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&cmv1.Certificate{}).Build()
}

func TestIssuerLifecycle(t *testing.T) {
	ctx := context.Background()
	c := hubClient()
	keys := pushed{}
	iss := certificates.New(c, c, keys, nil).OfferToClasses(tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: "ca"})
	ns := certificates.Namespace("member-1")
	key := types.NamespacedName{Namespace: ns, Name: "gw.infra.shared.https"}

	// No issuer named: the listener is left to certificateRefs.
	p := iss.ForPass(ctx, "member-1", nil)
	if res := p.ListenerCertificates(request(nil, translate.ClassParameters{})); res.Reason != "" || len(res.KeyPairs) > 0 {
		t.Fatalf("no issuer: %+v", res)
	}

	// Named by the class: pending, and Apply creates the Certificate.
	p = iss.ForPass(ctx, "member-1", nil)
	res := p.ListenerCertificates(request(nil, translate.ClassParameters{ClusterIssuer: "ca"}))
	if res.Reason != certificates.ReasonCertificatePending {
		t.Fatalf("first pass: %+v", res)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	var cert cmv1.Certificate
	if err := c.Get(ctx, key, &cert); err != nil {
		t.Fatal(err)
	}
	if cert.Spec.IssuerRef.Kind != cmv1.ClusterIssuerKind || cert.Spec.IssuerRef.Name != "ca" || cert.Spec.DNSNames[0] != "*.apps.example.test" {
		t.Errorf("Certificate spec %+v", cert.Spec)
	}

	// The annotation names the class's own issuer: the same Certificate.
	p = iss.ForPass(ctx, "member-1", nil)
	if res := p.ListenerCertificates(request(map[string]string{certificates.AnnotationClusterIssuer: "ca"}, translate.ClassParameters{ClusterIssuer: "ca"})); res.Reason != certificates.ReasonCertificatePending {
		t.Fatalf("the class's issuer named again: %+v", res)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, key, &cert); err != nil || cert.Spec.IssuerRef.Name != "ca" {
		t.Fatalf("issuer after the annotation: %q (%v)", cert.Spec.IssuerRef.Name, err)
	}

	// Ready with its Secret: the key pair is published under the hub's name.
	crt, k := keyPair(t)
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cert.Spec.SecretName}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: k}}); err != nil {
		t.Fatal(err)
	}
	cert.Status.Conditions = []cmv1.CertificateCondition{{Type: cmv1.CertificateConditionReady, Status: cmmeta.ConditionTrue, ObservedGeneration: cert.Generation}}
	cert.Status.Revision = ptr.To(1)
	if err := c.Status().Update(ctx, &cert); err != nil {
		t.Fatal(err)
	}
	annotated := request(nil, translate.ClassParameters{ClusterIssuer: "ca"})
	p = iss.ForPass(ctx, "member-1", nil)
	res = p.ListenerCertificates(annotated)
	if len(res.KeyPairs) != 1 || res.KeyPairs[0] != "hub/member-1/gw.infra.shared.https" || keys[res.KeyPairs[0]] == nil {
		t.Fatalf("ready: %+v, pushed %v", res, keys)
	}

	// Another cluster leaving takes nothing of this one's; this one leaving
	// withdraws its key pair, and joining again publishes it anew.
	if err := iss.Forget("member-2"); err != nil || len(keys) != 1 {
		t.Fatalf("member-2 left: pushed %v (%v)", slices.Collect(maps.Keys(keys)), err)
	}
	if err := iss.Forget("member-1"); err != nil || len(keys) != 0 {
		t.Fatalf("member-1 left: pushed %v (%v)", slices.Collect(maps.Keys(keys)), err)
	}
	if res := iss.ForPass(ctx, "member-1", nil).ListenerCertificates(annotated); len(res.KeyPairs) != 1 || keys[res.KeyPairs[0]] == nil {
		t.Fatalf("member-1 back: %+v, pushed %v", res, slices.Collect(maps.Keys(keys)))
	}

	// Renewing (not Ready): the last key pair keeps serving.
	cert.Status.Conditions[0].Status = cmmeta.ConditionFalse
	if err := c.Status().Update(ctx, &cert); err != nil {
		t.Fatal(err)
	}
	if res := iss.ForPass(ctx, "member-1", nil).ListenerCertificates(annotated); len(res.KeyPairs) != 1 || res.Reason != "" {
		t.Errorf("during renewal: %+v", res)
	}

	// The listener goes away: its Certificate and Secret go too.
	p = iss.ForPass(ctx, "member-1", nil)
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, key, &cert); err == nil {
		t.Error("the Certificate of a listener that is gone is still there")
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace(ns)); err != nil || len(secrets.Items) != 0 {
		t.Errorf("secrets left: %d (%v)", len(secrets.Items), err)
	}
	if len(keys) != 0 {
		t.Errorf("the key pair of a listener that is gone is still published: %v", slices.Collect(maps.Keys(keys)))
	}
}

// A Gateway of no tenant may not pick another issuer than its class's: the
// listener says why, and the Certificate it had is deleted.
func TestRefusedIssuerGetsNoCertificate(t *testing.T) {
	ctx := context.Background()
	c := hubClient()
	iss := certificates.New(c, c, pushed{}, nil).OfferToClasses(tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: "ca"})
	key := types.NamespacedName{Namespace: certificates.Namespace("member-1"), Name: "gw.infra.shared.https"}
	class := translate.ClassParameters{ClusterIssuer: "ca"}

	p := iss.ForPass(ctx, "member-1", nil)
	p.ListenerCertificates(request(nil, class))
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	p = iss.ForPass(ctx, "member-1", nil)
	res := p.ListenerCertificates(request(map[string]string{certificates.AnnotationClusterIssuer: "internal-mtls"}, class))
	if res.Reason != policy.ReasonIssuerNotDelegated || len(res.KeyPairs) > 0 {
		t.Fatalf("another issuer than the class's: %+v", res)
	}
	for _, want := range []string{`listener "https"`, `metadata.annotations[gatehouse.dev/cluster-issuer]`, `ClusterIssuer "internal-mtls"`, `names ClusterIssuer "ca"`} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message does not say %s: %s", want, res.Message)
		}
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	var cert cmv1.Certificate
	if err := c.Get(ctx, key, &cert); err == nil {
		t.Errorf("the refused listener still has Certificate %s from %s", key, cert.Spec.IssuerRef.Name)
	}
}

func TestNamespaceFitsALabel(t *testing.T) {
	for _, cluster := range []string{"member-1", "eu.prod.cluster", string(make([]byte, 100))} {
		if n := certificates.Namespace(cluster); len(n) > 63 || n == "" {
			t.Errorf("Namespace(%q) = %q", cluster, n)
		}
	}
}

// A GatewayClass's parameters live in the member: a class naming an issuer
// the hub does not offer to classes gets no Certificate.
func TestClassIssuerMustBeOffered(t *testing.T) {
	ctx := context.Background()
	c := hubClient()
	iss := certificates.New(c, c, pushed{}, nil).OfferToClasses(tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: "ca"})
	p := iss.ForPass(ctx, "member-1", nil)
	res := p.ListenerCertificates(request(nil, translate.ClassParameters{ClusterIssuer: "internal-mtls"}))
	if res.Reason != policy.ReasonIssuerNotDelegated || !strings.Contains(res.Message, "offered: ClusterIssuer/ca") {
		t.Fatalf("a class naming an issuer the hub does not offer: %+v", res)
	}
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	var list cmv1.CertificateList
	if err := c.List(ctx, &list); err != nil || len(list.Items) != 0 {
		t.Fatalf("Certificates: %v %v", list.Items, err)
	}
}
