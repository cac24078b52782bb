package certificates_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// calls records what the Issuer asks of the hub and the push server. While
// translating is set, any call fails the test: translation is pure, and the
// certificate source handed to it may only look up what ForPass read.
type calls struct {
	t           *testing.T
	translating bool
	log         []string
}

func (c *calls) record(format string, args ...any) {
	call := fmt.Sprintf(format, args...)
	if c.translating {
		c.t.Errorf("%s while translating", call)
	}
	c.log = append(c.log, call)
}

// take returns the calls since the last take.
func (c *calls) take() []string {
	out := c.log
	c.log = nil
	return out
}

func kind(o any) string { return reflect.TypeOf(o).Elem().Name() }

// client wraps hub so that every call is recorded.
func (c *calls) client(hub client.WithWatch) client.Client {
	return interceptor.NewClient(hub, interceptor.Funcs{
		Get: func(ctx context.Context, w client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			c.record("get %s %s", kind(obj), key)
			return w.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, w client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			c.record("list %s", kind(list))
			return w.List(ctx, list, opts...)
		},
		Create: func(ctx context.Context, w client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			c.record("create %s %s", kind(obj), client.ObjectKeyFromObject(obj))
			return w.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, w client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			c.record("update %s %s", kind(obj), client.ObjectKeyFromObject(obj))
			return w.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, w client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			c.record("patch %s %s", kind(obj), client.ObjectKeyFromObject(obj))
			return w.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(ctx context.Context, w client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			c.record("apply %T", obj)
			return w.Apply(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, w client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			c.record("delete %s %s", kind(obj), client.ObjectKeyFromObject(obj))
			return w.Delete(ctx, obj, opts...)
		},
		DeleteAllOf: func(ctx context.Context, w client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			c.record("deleteAllOf %s", kind(obj))
			return w.DeleteAllOf(ctx, obj, opts...)
		},
		Watch: func(ctx context.Context, w client.WithWatch, list client.ObjectList, opts ...client.ListOption) (watch.Interface, error) {
			c.record("watch %s", kind(list))
			return w.Watch(ctx, list, opts...)
		},
		SubResource: func(w client.WithWatch, sub string) client.SubResourceClient {
			c.record("subresource %s", sub)
			return w.SubResource(sub)
		},
	})
}

// recordedKeys is a push server that records what is published.
type recordedKeys struct {
	calls *calls
	pushed
}

func (k recordedKeys) SetKeyPair(kp *routetable.KeyPair) (string, error) {
	k.calls.record("publish %s", kp.Name)
	return k.pushed.SetKeyPair(kp)
}

func (k recordedKeys) DeleteKeyPair(name string) error {
	k.calls.record("withdraw %s", name)
	return k.pushed.DeleteKeyPair(name)
}

// cluster is a member with one HTTPS listener without certificateRefs,
// whose class names the hub's ClusterIssuer "ca".
func cluster() translate.Input {
	ns := "infra"
	return translate.Input{
		GatewayClasses: []*gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse"}, Spec: gwv1.GatewayClassSpec{
			ControllerName: translate.ControllerName,
			ParametersRef:  &gwv1.ParametersReference{Kind: "ConfigMap", Name: "params", Namespace: ptr.To(gwv1.Namespace(ns))}}}},
		ConfigMaps: []*corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "params"}, Data: map[string]string{"clusterIssuer": "ca"}}},
		Namespaces: []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: ns}}},
		Gateways: []*gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared", Generation: 1}, Spec: gwv1.GatewaySpec{
			GatewayClassName: "gatehouse",
			Listeners: []gwv1.Listener{{Name: "https", Protocol: gwv1.HTTPSProtocolType, Port: 443, Hostname: ptr.To(gwv1.Hostname("*.apps.example.test")),
				TLS: &gwv1.ListenerTLSConfig{Mode: ptr.To(gwv1.TLSModeTerminate)}}}}}},
	}
}

// served is what the translated listener serves, or why not.
func served(t *testing.T, out translate.Output) string {
	t.Helper()
	key := types.NamespacedName{Namespace: "infra", Name: "shared"}
	if tbl := out.Tables[key]; tbl != nil {
		for _, l := range tbl.Listeners {
			if l.Tls != nil && len(l.Tls.Certificates) > 0 {
				return "key pairs " + fmt.Sprint(l.Tls.Certificates)
			}
		}
	}
	if st := out.Gateways[key]; st != nil {
		for _, l := range st.Listeners {
			for _, c := range l.Conditions {
				if c.Type == string(gwv1.ListenerConditionResolvedRefs) && c.Status == metav1.ConditionFalse {
					return c.Reason
				}
			}
		}
	}
	t.Fatalf("the listener neither serves a key pair nor says why: %+v", out.Gateways[key])
	return ""
}

// TestListenerCertificatesOnlyLooksUp runs translations of a cluster through
// the life of its listener's certificate and asserts that everything the
// Issuer reads or publishes happens in ForPass, before translation, and
// everything it writes in Apply, after; translation itself calls neither the
// hub nor the push server.
func TestListenerCertificatesOnlyLooksUp(t *testing.T) {
	ctx := context.Background()
	hub := hubClient()
	rec := &calls{t: t}
	c := rec.client(hub)
	iss := certificates.New(c, c, recordedKeys{rec, pushed{}}, nil).OfferToClasses(tenancyv1.IssuerReference{Kind: "ClusterIssuer", Name: "ca"})
	ns := certificates.Namespace("member-1")
	cert := types.NamespacedName{Namespace: ns, Name: "gw.infra.shared.https"}
	keyPairName := "hub/member-1/gw.infra.shared.https"

	// pass translates the cluster once, between ForPass and Apply, and
	// returns what the listener serves and the calls of each step.
	pass := func(in translate.Input) (got string, before, after []string) {
		t.Helper()
		p := iss.ForPass(ctx, "member-1", nil)
		before = rec.take()
		in.Certificates = p
		rec.translating = true
		out := translate.Translate(in)
		rec.translating = false
		if len(in.Gateways) > 0 {
			got = served(t, out)
		}
		if err := p.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		return got, before, rec.take()
	}
	// setReady makes the Certificate Ready at a revision, behind the
	// recorder's back, as cert-manager would.
	setReady := func(status cmmeta.ConditionStatus, revision int) {
		t.Helper()
		var have cmv1.Certificate
		if err := hub.Get(ctx, cert, &have); err != nil {
			t.Fatal(err)
		}
		have.Status.Conditions = []cmv1.CertificateCondition{{Type: cmv1.CertificateConditionReady, Status: status, ObservedGeneration: have.Generation}}
		have.Status.Revision = ptr.To(revision)
		if err := hub.Status().Update(ctx, &have); err != nil {
			t.Fatal(err)
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cert.Name}, Type: corev1.SecretTypeTLS}

	steps := []struct {
		name          string
		change        func()
		gone          bool
		served        string
		before, after []string
	}{{
		name:   "no Certificate yet",
		served: string(certificates.ReasonCertificatePending),
		before: []string{"list CertificateList"},
		after: []string{"create Namespace /" + ns, "get Certificate " + cert.String(), "create Certificate " + cert.String(),
			"list CertificateList"},
	}, {
		name:   "not Ready",
		served: string(certificates.ReasonCertificatePending),
		before: []string{"list CertificateList"},
		after:  []string{"create Namespace /" + ns, "get Certificate " + cert.String(), "list CertificateList"},
	}, {
		name: "Ready: ForPass reads the Secret and publishes the key pair",
		change: func() {
			crt, key := keyPair(t)
			secret.Data = map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}
			if err := hub.Create(ctx, secret); err != nil {
				t.Fatal(err)
			}
			setReady(cmmeta.ConditionTrue, 1)
		},
		served: "key pairs [" + keyPairName + "]",
		before: []string{"list CertificateList", "get Secret " + cert.String(), "publish " + keyPairName},
		after:  []string{"create Namespace /" + ns, "get Certificate " + cert.String(), "list CertificateList"},
	}, {
		name:   "the same issue: nothing read again",
		served: "key pairs [" + keyPairName + "]",
		before: []string{"list CertificateList"},
		after:  []string{"create Namespace /" + ns, "get Certificate " + cert.String(), "list CertificateList"},
	}, {
		name: "renewed, its Secret unusable: the last key pair keeps serving",
		change: func() {
			secret.Data = map[string][]byte{corev1.TLSCertKey: []byte("garbage")}
			if err := hub.Update(ctx, secret); err != nil {
				t.Fatal(err)
			}
			setReady(cmmeta.ConditionTrue, 2)
		},
		served: "key pairs [" + keyPairName + "]",
		before: []string{"list CertificateList", "get Secret " + cert.String()},
		after:  []string{"create Namespace /" + ns, "get Certificate " + cert.String(), "list CertificateList"},
	}, {
		name:   "renewing, not Ready: the last key pair keeps serving",
		change: func() { setReady(cmmeta.ConditionFalse, 2) },
		served: "key pairs [" + keyPairName + "]",
		before: []string{"list CertificateList"},
		after:  []string{"create Namespace /" + ns, "get Certificate " + cert.String(), "list CertificateList"},
	}, {
		name:   "the Gateway goes: Apply deletes the Certificate and Secret and withdraws the key pair",
		gone:   true,
		before: []string{"list CertificateList"},
		after: []string{"list CertificateList", "delete Certificate " + cert.String(), "delete Secret " + cert.String(),
			"withdraw " + keyPairName},
	}}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		in := cluster()
		if s.gone {
			in.Gateways = nil
		}
		got, before, after := pass(in)
		if got != s.served {
			t.Errorf("%s: the listener serves %q, want %q", s.name, got, s.served)
		}
		if !slices.Equal(before, s.before) {
			t.Errorf("%s: ForPass did\n\t%q\nwant\n\t%q", s.name, before, s.before)
		}
		if !slices.Equal(after, s.after) {
			t.Errorf("%s: Apply did\n\t%q\nwant\n\t%q", s.name, after, s.after)
		}
	}
}
