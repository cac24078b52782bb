package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// LabelGateway marks the objects the hub creates for a Gateway.
const LabelGateway = "gatehouse.dev/gateway"

// Provisioning says how managed-mode proxies are created in members.
type Provisioning struct {
	// Image of gatehouse-proxy.
	Image string
	// XDSAddress is where proxies in member clusters reach the hub.
	XDSAddress string
	// CABundle returns the PEM certificates that sign the push server's
	// certificate; the hub writes them beside each managed proxy.
	CABundle func() []byte
}

// PushCABundleName is the ConfigMap (key ca.crt) in the hub namespace
// holding the CA bundle proxies verify the push server with, for whoever
// installs proxies; each managed-mode proxy gets a copy of its own
// (proxyCABundle).
const PushCABundleName = "gatehouse-push-ca"

// proxyCABundle names a Gateway's copy of the push CA bundle. Each Gateway
// has its own, owned by it: one shared by the Gateways of a namespace would
// go with whichever Gateway owned it.
func proxyCABundle(gateway string) string {
	name := ProxyServiceAccount(gateway)
	if len(name) > 249 {
		name = strings.TrimRight(name[:249], "-.")
	}
	return name + "-ca"
}

// proxyServiceName names a Gateway's proxies' Service. A Service's name
// is a DNS label, at most 63 characters and without dots, where a
// Gateway's may have 253 and dots: a name that would not be a label is cut
// and told apart from others cut alike by a hash of the Gateway's name.
func proxyServiceName(gateway string) string {
	name := "gatehouse-proxy-" + gateway
	if len(name) <= validation.DNS1035LabelMaxLength && !strings.Contains(name, ".") {
		return name
	}
	sum := sha256.Sum256([]byte(gateway))
	suffix := "-" + hex.EncodeToString(sum[:4])
	name = strings.ReplaceAll(name, ".", "-")
	return strings.TrimRight(name[:min(len(name), validation.DNS1035LabelMaxLength-len(suffix))], "-") + suffix
}

// Where a managed proxy finds its push credentials.
const (
	proxyTokenDir     = "/var/run/secrets/gatehouse"
	proxyTokenSeconds = 3600
)

// provision creates or updates, for each accepted Gateway of a managed-mode
// class, its proxies' ServiceAccount, CA bundle, Deployment,
// PodDisruptionBudget and Service in the member, shaped by the Gateway's
// proxy settings and all owned by the Gateway so that they go with it. It
// returns the addresses each Service was given.
// Proxies it refuses to provision (refusedNamespace, claiming) are returned
// with the reason, for the Gateway's status.
func (w *worker) provision(ctx context.Context, in translate.Input, out translate.Output) (map[types.NamespacedName][]gwv1.GatewayStatusAddress, map[types.NamespacedName]string, error) {
	p := w.hub.opts.Provisioning
	addrs, refusals := map[types.NamespacedName][]gwv1.GatewayStatusAddress{}, map[types.NamespacedName]string{}
	if p.Image == "" {
		return addrs, refusals, nil
	}
	var errs []error
	for _, gw := range in.Gateways {
		k := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
		params, ok := out.Parameters[string(gw.Spec.GatewayClassName)]
		if !ok || params.Mode != translate.ModeManaged || out.Tables[k] == nil {
			continue
		}
		if why := refusedNamespace(gw.Namespace, w.hub.opts.Namespace); why != "" {
			refusals[k] = why
			continue
		}
		a, err := w.provisionGateway(ctx, gw, p, params, out.ProxySettings[k])
		if why, ok := refused(err); ok {
			refusals[k] = why
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("provisioning proxies of Gateway %s: %w", k, err))
			continue
		}
		addrs[k] = a
	}
	return addrs, refusals, errors.Join(errs...)
}

func (w *worker) provisionGateway(ctx context.Context, gw *gwv1.Gateway, p Provisioning, params translate.ClassParameters, settings translate.ProxySettings) ([]gwv1.GatewayStatusAddress, error) {
	c := claiming{w.cl.GetClient()}
	name := ProxyServiceAccount(gw.Name)
	pod := proxyPod{gateway: gw, cluster: w.name, image: p.Image, xds: p.XDSAddress, params: params, settings: settings}
	labels, annotations := infrastructure(gw)
	owned := func(obj client.Object) {
		obj.SetLabels(merge(obj.GetLabels(), labels, pod.selector(), gatewayNameLabel(gw)))
		obj.SetAnnotations(merge(obj.GetAnnotations(), annotations))
		_ = controllerutil.SetControllerReference(gw, obj, c.Scheme())
	}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, sa, func() error { owned(sa); return nil }); err != nil {
		return nil, err
	}

	if p.CABundle == nil || len(p.CABundle()) == 0 {
		return nil, fmt.Errorf("the push server's CA bundle is not loaded yet")
	}
	ca := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: proxyCABundle(gw.Name), Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, ca, func() error {
		owned(ca)
		ca.Data = map[string]string{"ca.crt": string(p.CABundle())}
		return nil
	}); err != nil {
		return nil, err
	}

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, dep, func() error {
		owned(dep)
		// The hub owns the pod template; only kubectl's restart marker,
		// which `kubectl rollout restart` writes, is kept.
		restarted, ok := dep.Spec.Template.Annotations[annotationRestartedAt]
		dep.Spec = pod.deploymentSpec()
		if ok {
			dep.Spec.Template.Annotations = merge(dep.Spec.Template.Annotations, map[string]string{annotationRestartedAt: restarted})
		}
		return nil
	}); err != nil {
		return nil, err
	}

	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, pdb, func() error {
		owned(pdb)
		pdb.Spec = pod.disruptionBudget()
		return nil
	}); err != nil {
		return nil, err
	}

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: proxyServiceName(gw.Name), Namespace: gw.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, svc, func() error {
		owned(svc)
		pod.setServiceSpec(svc)
		return nil
	}); err != nil {
		return nil, err
	}
	return serviceAddresses(svc), nil
}

// annotationRestartedAt is what `kubectl rollout restart` sets on a pod
// template to roll it.
const annotationRestartedAt = "kubectl.kubernetes.io/restartedAt"

// infrastructure are the labels and annotations spec.infrastructure asks
// every object of the Gateway's proxies to carry, less those in the hub's
// own domain: the hub writes and reads keys of gatehouse.dev on these
// objects itself (which Gateway an object is for, whether its cached copy
// is whole), and a Gateway must not be able to say otherwise. The labels
// the hub sets beside them (LabelGateway, the Gateway API's gateway-name)
// are merged last, so they win over any a Gateway asks for.
func infrastructure(gw *gwv1.Gateway) (map[string]string, map[string]string) {
	labels, annotations := map[string]string{}, map[string]string{}
	if inf := gw.Spec.Infrastructure; inf != nil {
		for k, v := range inf.Labels {
			if !translate.InDomain(string(k), hubDomain) {
				labels[string(k)] = string(v)
			}
		}
		for k, v := range inf.Annotations {
			if !translate.InDomain(string(k), hubDomain) {
				annotations[string(k)] = string(v)
			}
		}
	}
	return labels, annotations
}

// hubDomain is the domain of the labels and annotations the hub owns.
const hubDomain = "gatehouse.dev"

func merge(into map[string]string, from ...map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	for _, m := range from {
		maps.Copy(into, m)
	}
	return into
}
