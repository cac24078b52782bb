package kubelet

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// What Options.ServiceAccountTokens gives a Pod: the volume the
// ServiceAccount admission plugin would add (kube-api-access-*), written by
// the kubelet itself, and the environment of the kubernetes Service.

// serviceAccountDir is where client-go's in-cluster configuration reads
// the token, the CA and the namespace.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// tokenLifetime is what the admission plugin asks for (an hour and seven
// seconds). The fake kubelet does not renew tokens, these nor projected
// ones: test Pods live less.
const tokenLifetime = 3607

// automounts reports whether pod's containers get the ServiceAccount volume.
func (w *podWorker) automounts(pod *corev1.Pod) bool {
	return w.k.opts.ServiceAccountTokens && (pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken)
}

// serviceAccountMount writes the Pod's token, the CA and the namespace
// once per run and returns their mount, unless c mounts something there
// itself.
func (w *podWorker) serviceAccountMount(pod *corev1.Pod, c corev1.Container) ([]mountSpec, error) {
	if !w.automounts(pod) {
		return nil, nil
	}
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) == serviceAccountDir {
			return nil, nil
		}
	}
	const name = "kube-api-access" // the admission plugin's volume name, without its suffix
	run := w.cur
	dir, ok := run.volumes[name]
	if !ok {
		files, err := w.serviceAccountFiles(pod)
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(run.dir, "volumes", name)
		if err := writeVolume(dir, files); err != nil {
			return nil, fmt.Errorf("the ServiceAccount volume: %w", err)
		}
		run.volumes[name] = dir
	}
	return []mountSpec{{source: dir, target: serviceAccountDir, readOnly: true}}, nil
}

func (w *podWorker) serviceAccountFiles(pod *corev1.Pod) ([]volumeFile, error) {
	token, err := w.podToken(pod, nil, tokenLifetime)
	if err != nil {
		return nil, err
	}
	ca, err := w.k.apiCA()
	if err != nil {
		return nil, err
	}
	return []volumeFile{
		{path: "token", data: []byte(token), mode: defaultFileMode},
		{path: "ca.crt", data: ca, mode: defaultFileMode},
		{path: "namespace", data: []byte(pod.Namespace), mode: defaultFileMode},
	}, nil
}

// podToken is a token of the Pod's ServiceAccount bound to the Pod, for
// audiences (none: the API server's own), as a kubelet requests it.
func (w *podWorker) podToken(pod *corev1.Pod, audiences []string, seconds int64) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := w.k.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(w.k.ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{
			Audiences:         audiences,
			ExpirationSeconds: ptr.To(seconds),
			BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", waiting("ContainerCreating", "a token of ServiceAccount %s/%s: %v", pod.Namespace, sa, err)
	}
	return tr.Status.Token, nil
}

// apiCA is the CA bundle that verifies the API server of Options.Config.
func (k *Kubelet) apiCA() ([]byte, error) {
	if c := k.opts.Config.CAData; len(c) > 0 {
		return c, nil
	}
	if f := k.opts.Config.CAFile; f != "" {
		return os.ReadFile(f)
	}
	return nil, fmt.Errorf("kubelet: Options.Config has no CA to give Pods")
}

// serviceEnv is the environment of the kubernetes Service, pointing at the
// API server of Options.Config: there is no kube-proxy to reach its
// cluster IP, and the API server's certificate does not name it.
func (k *Kubelet) serviceEnv() ([][2]string, error) {
	if !k.opts.ServiceAccountTokens {
		return nil, nil
	}
	u, err := url.Parse(k.opts.Config.Host)
	if err != nil {
		return nil, fmt.Errorf("kubelet: Options.Config.Host: %w", err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "443"
	}
	return [][2]string{
		{"KUBERNETES_SERVICE_HOST", host},
		{"KUBERNETES_SERVICE_PORT", port},
		{"KUBERNETES_SERVICE_PORT_HTTPS", port},
		{"KUBERNETES_PORT", "tcp://" + net.JoinHostPort(host, port)},
	}, nil
}
