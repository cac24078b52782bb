package hub

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// TestClaimingRefusesTakeover: a member admin's Deployment that happens to
// bear a proxy's name is neither changed nor adopted; the hub's own is.
func TestClaimingRefusesTakeover(t *testing.T) {
	ctx := context.Background()
	theirs := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-proxy-shared", Namespace: "infra", Labels: map[string]string{"app": "theirs"}}}
	ours := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-proxy-web", Namespace: "infra", Labels: map[string]string{LabelGateway: "web"}}}
	c := claiming{fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(theirs, ours).Build()}
	relabel := func(d *appsv1.Deployment) func() error {
		return func() error {
			d.Labels = map[string]string{LabelGateway: "x"}
			d.Spec.Replicas = new(int32)
			return nil
		}
	}

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: theirs.Name, Namespace: theirs.Namespace}}
	_, err := controllerutil.CreateOrPatch(ctx, c, dep, relabel(dep))
	why, ok := refused(err)
	if !ok || !strings.Contains(why, "infra/gatehouse-proxy-shared") || !strings.Contains(why, "not created by Gatehouse") {
		t.Fatalf("taking over the admin's Deployment: %v, want a refusal naming it", err)
	}
	var stored appsv1.Deployment
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(theirs), &stored); err != nil || stored.Labels["app"] != "theirs" || stored.Labels[LabelGateway] != "" {
		t.Errorf("the admin's Deployment changed: %v %v", stored.Labels, err)
	}

	mine := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: ours.Name, Namespace: ours.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, mine, relabel(mine)); err != nil {
		t.Errorf("updating the hub's own Deployment: %v", err)
	}
	fresh := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-proxy-new", Namespace: "infra"}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, fresh, relabel(fresh)); err != nil {
		t.Errorf("creating a new Deployment: %v", err)
	}
}

// TestClaimingRefusesWhatTheCacheDoesNotShow: a create that finds an object
// the cache did not show is the same refusal, not an error to retry.
func TestClaimingRefusesWhatTheCacheDoesNotShow(t *testing.T) {
	theirs := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-proxy-shared", Namespace: "infra"}}
	c := claiming{fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(theirs).Build()}
	err := c.Create(context.Background(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: theirs.Name, Namespace: theirs.Namespace}})
	if _, ok := refused(err); !ok {
		t.Errorf("create over an existing object: %v, want a refusal", err)
	}
}

func TestRefusedNamespace(t *testing.T) {
	for ns, want := range map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true, "gatehouse-system": true, "infra": false, "default": false} {
		if got := refusedNamespace(ns, "gatehouse-system") != ""; got != want {
			t.Errorf("namespace %s refused: %v, want %v", ns, got, want)
		}
	}
}
