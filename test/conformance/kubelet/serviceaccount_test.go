package kubelet

import (
	"slices"
	"testing"

	"k8s.io/client-go/rest"
)

// TestServiceEnv: with ServiceAccountTokens, containers get the API
// server of the kubelet's config as the kubernetes Service's environment;
// without, nothing (conformance runs stay as they were).
func TestServiceEnv(t *testing.T) {
	for _, c := range []struct {
		host string
		on   bool
		want [][2]string
	}{
		{"https://10.244.255.1:6443", true, [][2]string{{"KUBERNETES_SERVICE_HOST", "10.244.255.1"}, {"KUBERNETES_SERVICE_PORT", "6443"},
			{"KUBERNETES_SERVICE_PORT_HTTPS", "6443"}, {"KUBERNETES_PORT", "tcp://10.244.255.1:6443"}}},
		{"https://api.example.test", true, [][2]string{{"KUBERNETES_SERVICE_HOST", "api.example.test"}, {"KUBERNETES_SERVICE_PORT", "443"},
			{"KUBERNETES_SERVICE_PORT_HTTPS", "443"}, {"KUBERNETES_PORT", "tcp://api.example.test:443"}}},
		{"https://10.244.255.1:6443", false, nil},
	} {
		k := &Kubelet{opts: Options{Config: &rest.Config{Host: c.host}, ServiceAccountTokens: c.on}}
		got, err := k.serviceEnv()
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s (tokens %v): got %v %v, want %v", c.host, c.on, got, err, c.want)
		}
	}
}
