package env_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The cert-manager controller that 'make tools' builds must issue through a
// CA chain: SelfSigned ClusterIssuer → CA Certificate → CA ClusterIssuer →
// leaf Certificate, the chain the certificate e2e relies on.
func TestCertManagerIssuesThroughACAChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet, err := env.Start(ctx, env.Options{CertManager: true})
	if err != nil {
		t.Fatalf("starting the hub with cert-manager: %v", err)
	}
	defer func() {
		if err := fleet.Stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
	}()

	s := env.Scheme()
	if err := cmv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(fleet.Hub.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	create := func(obj client.Object) {
		t.Helper()
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	pool, err := env.CAClusterIssuer(ctx, c, "ca")
	if err != nil {
		t.Fatal(err)
	}
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "member-1"}})
	create(&cmv1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: "member-1"},
		Spec: cmv1.CertificateSpec{
			DNSNames: []string{"*.apps.example.test"}, SecretName: "apps-tls",
			IssuerRef: cmmeta.IssuerReference{Kind: "ClusterIssuer", Name: "ca"},
		},
	})

	var leaf cmv1.Certificate
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "member-1", Name: "apps"}, &leaf); err != nil {
			return false, err
		}
		for _, cond := range leaf.Status.Conditions {
			if cond.Type == cmv1.CertificateConditionReady && cond.Status == cmmeta.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("leaf Certificate never became Ready: %v; conditions: %+v", err, leaf.Status.Conditions)
	}

	var issued corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "member-1", Name: "apps-tls"}, &issued); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(issued.Data["tls.crt"])
	if block == nil {
		t.Fatal("issued Secret holds no certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "a.apps.example.test"}); err != nil {
		t.Fatalf("issued certificate does not verify for a.apps.example.test against the CA: %v", err)
	}
}
