package join_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
	"github.com/gatehouse-dev/gatehouse/operator/hub"
)

func TestValidateRefuses(t *testing.T) {
	ok := join.Options{Cluster: "member-1", HubNamespace: "gatehouse-system", MemberNamespace: "gatehouse-system", TokenDuration: time.Hour}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, c := range []struct {
		name   string
		change func(*join.Options)
		want   string
	}{
		{"a plain-http server", func(o *join.Options) { o.Server = "http://10.0.0.1:6443" }, "https only"},
		{"a server without a scheme", func(o *join.Options) { o.Server = "10.0.0.1:6443" }, "https only"},
		{"the name of the hub's own key pairs", func(o *join.Options) { o.Cluster = "hub" }, "reserved"},
		{"a name whose certificate namespace is the hub's", func(o *join.Options) { o.Cluster = "system" }, "hub's own namespace"},
		{"a name with a dot", func(o *join.Options) { o.Cluster = "a.b" }, `e.g. "a-b"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.change(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate() = %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// Leave finds the managed proxies' objects by the label the hub puts on them.
func TestLabelGatewayIsTheHubs(t *testing.T) {
	if join.LabelGateway != hub.LabelGateway {
		t.Errorf("join.LabelGateway = %q, operator/hub.LabelGateway = %q", join.LabelGateway, hub.LabelGateway)
	}
}

// Every join makes a credential of its own, which its token depends on and
// which leave finds by its labels.
func TestCredentialSecret(t *testing.T) {
	o := join.Options{Cluster: "member-1", MemberNamespace: "gatehouse-system"}
	for _, tc := range []struct {
		tokenSecret bool
		typ         corev1.SecretType
	}{{false, corev1.SecretTypeOpaque}, {true, corev1.SecretTypeServiceAccountToken}} {
		o.TokenSecret = tc.tokenSecret
		s := join.CredentialSecret(o)
		if s.Name != "" || !strings.HasPrefix(s.GenerateName, join.ServiceAccount+"-") || s.Type != tc.typ {
			t.Errorf("--token-secret=%v: name %q, generateName %q, type %q; want a generated name and type %q", tc.tokenSecret, s.Name, s.GenerateName, s.Type, tc.typ)
		}
		if s.Labels[join.LabelJoined] != join.FieldManager || s.Labels[join.LabelCluster] != "member-1" || s.Namespace != "gatehouse-system" {
			t.Errorf("--token-secret=%v: %s/%s labelled %v", tc.tokenSecret, s.Namespace, s.GenerateName, s.Labels)
		}
	}
}
