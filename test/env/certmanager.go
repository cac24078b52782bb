package env

import (
	"context"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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
