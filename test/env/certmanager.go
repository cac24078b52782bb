package env

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CertManagerNamespace holds the Secrets of ClusterIssuers on the hub.
const CertManagerNamespace = "cert-manager"

const certManagerModule = "github.com/cert-manager/cert-manager"

// certManagerCRDs are the CRDs shipped in the cert-manager module this
// repository pins, so the controller and the CRDs are of one release.
func certManagerCRDs() ([]string, error) {
	dir, err := moduleDir(certManagerModule)
	if err != nil {
		return nil, err
	}
	return []string{filepath.Join(dir, "deploy", "crds")}, nil
}

func (f *Fleet) startCertManager(ctx context.Context, opts Options) error {
	hub, err := kubernetes.NewForConfig(f.Hub.Config)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: CertManagerNamespace}}
	if _, err := hub.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s on the hub: %w", CertManagerNamespace, err)
	}
	f.CertManager, err = StartProcess("hub/cert-manager", filepath.Join(opts.BinDir, "cert-manager-controller"), []string{
		"--kubeconfig=" + f.Hub.KubeconfigPath,
		"--cluster-resource-namespace=" + CertManagerNamespace,
	}, opts.Log)
	return err
}

// CAClusterIssuer builds, on the hub, the chain the certificate tests use:
// a SelfSigned ClusterIssuer, a CA Certificate it signs and a CA
// ClusterIssuer called name that issues from it. It waits for the CA and
// returns a pool holding that CA alone. c must know cert-manager's types.
func CAClusterIssuer(ctx context.Context, c client.Client, name string) (*x509.CertPool, error) {
	for _, o := range []client.Object{
		&cmv1.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name + "-selfsigned"}, Spec: cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{SelfSigned: &cmv1.SelfSignedIssuer{}}}},
		&cmv1.Certificate{ObjectMeta: metav1.ObjectMeta{Name: name + "-root", Namespace: CertManagerNamespace}, Spec: cmv1.CertificateSpec{
			IsCA: true, CommonName: "gatehouse test CA " + name, SecretName: name + "-root",
			IssuerRef: cmmeta.IssuerReference{Kind: cmv1.ClusterIssuerKind, Name: name + "-selfsigned"}}},
		&cmv1.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{CA: &cmv1.CAIssuer{SecretName: name + "-root"}}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			return nil, fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	pool := x509.NewCertPool()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: CertManagerNamespace, Name: name + "-root"}, &s); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return pool.AppendCertsFromPEM(s.Data[corev1.TLSCertKey]), nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the CA %s-root: %w", name, err)
	}
	return pool, nil
}
