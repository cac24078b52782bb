// Package certificates issues listener certificates through cert-manager on
// the hub: for an HTTPS listener without certificateRefs whose Gateway (or
// ListenerSet) annotations or GatewayClass parameters name an issuer, it
// keeps a cert-manager Certificate in the hub — in a namespace of the
// member cluster's own — and, once it is Ready, ships its key pair with the
// Gateway's route table. No Secret is ever written into a member cluster.
//
// Before it asks cert-manager for anything, a pass asks its Authorizer
// whether the listener's owner may have that certificate: an issuer the
// platform team chose for the class or delegated to the owner's tenant,
// for a hostname the owner holds. A refused listener gets no Certificate.
package certificates

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// Annotations of ours on a Gateway or ListenerSet, and keys of a
// listener's tls.options. They differ from cert-manager's own gateway-shim
// annotations, which would have cert-manager write Secrets into the
// member. They may name only the class's issuer or, on a tenant's object,
// one delegated to the tenant (policy.Decider.Certificate).
const (
	AnnotationClusterIssuer = "gatehouse.dev/cluster-issuer"
	// AnnotationIssuer names an Issuer in the member's namespace on the hub.
	AnnotationIssuer = "gatehouse.dev/issuer"

	// LabelCluster marks our Certificates with their member cluster.
	LabelCluster = "gatehouse.dev/cluster"

	// ReasonCertificatePending: the listener's Certificate is not Ready.
	ReasonCertificatePending gwv1.ListenerConditionReason = "CertificatePending"
)

// KeyPairs is where issued key pairs go: the push server.
type KeyPairs interface {
	SetKeyPair(*routetable.KeyPair) (string, error)
	DeleteKeyPair(name string) error
}

// Issuer keeps the Certificates of every member's listeners.
type Issuer struct {
	c      client.Client // hub, cached: Certificates, Namespaces
	secret client.Reader // hub, uncached: the issued Secrets
	keys   KeyPairs
	log    *slog.Logger

	// classIssuers are the issuers GatewayClasses may name (OfferToClasses).
	classIssuers []tenancyv1.IssuerReference

	// waiting: cert-manager's API is not served on the hub yet
	// (SetupWhenServed); passes ask it for nothing.
	waiting atomic.Bool

	mu sync.Mutex
	// published: the key pair last published for each Certificate, by the
	// Certificate's uid and revision, so a Secret is read once per issue.
	published map[string]string
}

// New returns an Issuer.
func New(c client.Client, secrets client.Reader, keys KeyPairs, log *slog.Logger) *Issuer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Issuer{c: c, secret: secrets, keys: keys, log: log, published: map[string]string{}}
}

// OfferToClasses sets the issuers GatewayClasses' parameters may name; a
// class naming any other gets no certificates. Call before the first pass.
func (i *Issuer) OfferToClasses(refs ...tenancyv1.IssuerReference) *Issuer {
	i.classIssuers = slices.Clone(refs)
	return i
}

// ParseIssuers reads "ClusterIssuer/NAME" and "Issuer/NAME" items.
func ParseIssuers(items []string) ([]tenancyv1.IssuerReference, error) {
	var out []tenancyv1.IssuerReference
	for _, item := range items {
		kind, name, ok := strings.Cut(item, "/")
		if !ok || name == "" || (kind != cmv1.ClusterIssuerKind && kind != cmv1.IssuerKind) {
			return nil, fmt.Errorf("issuer %q: want ClusterIssuer/NAME or Issuer/NAME", item)
		}
		out = append(out, tenancyv1.IssuerReference{Kind: kind, Name: name})
	}
	return out, nil
}

// Namespace is the hub namespace that holds a member's Certificates.
func Namespace(cluster string) string {
	n := "gatehouse-" + strings.ToLower(strings.ReplaceAll(cluster, ".", "-"))
	if len(n) > 63 {
		sum := sha256.Sum256([]byte(cluster))
		n = n[:52] + "-" + hex.EncodeToString(sum[:])[:10]
	}
	return n
}

// Pass is the certificate source of one translation of one cluster.
// Translation is pure, so a Pass does its reading and publishing around it:
// ForPass reads the cluster's Certificates and publishes the key pairs of
// the Ready ones before translation, ListenerCertificates only looks them up
// and notes which Certificates the listeners want, and Apply writes those
// after translation.
type Pass struct {
	i       *Issuer
	cluster string
	ns      string
	auth    Authorizer
	// waiting: cert-manager's API was not served when the pass began; the
	// pass reads and writes nothing.
	waiting bool

	// What ForPass found: the cluster's Certificates by name, the outcome of
	// publishing each Ready one's key pair, and the key pair names published
	// for the cluster by then. readErr: the Certificates could not be listed.
	have    map[string]*cmv1.Certificate
	issued  map[string]issued
	served  map[string]bool
	readErr error

	// wanted: the Certificates the listeners asked for, for Apply.
	wanted map[string]*cmv1.Certificate
}

// issued is the outcome of publishing a Ready Certificate's key pair: the
// key pair's push name, or why it cannot be used.
type issued struct {
	keyPair string
	err     error
}

// ForPass starts a pass for a cluster, before its translation: it reads the
// cluster's Certificates on the hub (one List) and publishes the key pair of
// each Ready one whose issue it has not published yet, reading its Secret.
// auth decides which certificates listeners may have; nil: no tenants, and
// only the classes' issuers.
func (i *Issuer) ForPass(ctx context.Context, cluster string, auth Authorizer) *Pass {
	if auth == nil {
		auth = noTenants{&policy.Decider{Tenancy: tenancy.NewView(nil, "")}}
	}
	p := &Pass{i: i, cluster: cluster, ns: Namespace(cluster), auth: auth, waiting: i.waiting.Load(),
		have: map[string]*cmv1.Certificate{}, issued: map[string]issued{}, served: map[string]bool{}, wanted: map[string]*cmv1.Certificate{}}
	if !p.waiting {
		p.read(ctx)
	}
	return p
}

// read lists the cluster's Certificates and publishes the Ready ones' key
// pairs. A Certificate whose listener is gone may be published here once
// more; Apply withdraws it in the same pass.
func (p *Pass) read(ctx context.Context) {
	var list cmv1.CertificateList
	if err := p.i.c.List(ctx, &list, client.InNamespace(p.ns), p.label()); err != nil {
		p.readErr = fmt.Errorf("listing the Certificates of cluster %s in %s on the hub: %w", p.cluster, p.ns, err)
		return
	}
	for i := range list.Items {
		c := &list.Items[i]
		p.have[c.Name] = c
		if !isReady(c) {
			continue
		}
		name, err := p.publish(ctx, c)
		p.issued[c.Name] = issued{keyPair: name, err: err}
	}
	prefix := keyPairPrefix(p.cluster)
	p.i.mu.Lock()
	for name := range p.i.published {
		if strings.HasPrefix(name, prefix) {
			p.served[name] = true
		}
	}
	p.i.mu.Unlock()
	for name, out := range p.issued {
		if out.err != nil && p.served[p.keyPairName(name)] {
			p.i.log.Warn("a renewed key pair cannot be used yet; serving the previous one", "certificate", p.ns+"/"+name, "error", out.err)
		}
	}
}

// label selects the cluster's Certificates.
func (p *Pass) label() client.MatchingLabels {
	return client.MatchingLabels{LabelCluster: labelValue(p.cluster)}
}

// Authorizer decides whether a listener may have the certificate it asks
// for: the issuer and the hostname (policy.Decider.Certificate, with the
// tenant of the listener's owner).
type Authorizer interface {
	AuthorizeCertificate(policy.CertificateRequest) []policy.Denial
}

// noTenants decides for a hub without tenancy: the class's issuer only,
// any hostname.
type noTenants struct{ d *policy.Decider }

func (n noTenants) AuthorizeCertificate(r policy.CertificateRequest) []policy.Denial {
	return n.d.Certificate("", r)
}

// request finds the issuer a listener asks for: its tls.options, the
// ListenerSet's annotations, the Gateway's, then the class parameters; and
// says who chose it, for the Authorizer.
func request(cluster string, req translate.ListenerCertificateRequest, offered []tenancyv1.IssuerReference) (policy.CertificateRequest, bool) {
	r := policy.CertificateRequest{Cluster: tenancy.Cluster{Name: cluster}, Gateway: req.Gateway, ListenerSet: req.ListenerSet,
		Listener: req.Listener, Hostname: req.Hostname, Class: string(req.Gateway.Spec.GatewayClassName), Offered: offered}
	r.ClassIssuer, _ = named(req.Parameters.ClusterIssuer, req.Parameters.Issuer)
	owner := fmt.Sprintf("Gateway %s/%s", req.Gateway.Namespace, req.Gateway.Name)
	if req.ListenerSet != nil {
		owner = fmt.Sprintf("ListenerSet %s/%s", req.ListenerSet.Namespace, req.ListenerSet.Name)
	}
	type source struct {
		values map[string]string
		by     string
		field  *field.Path
	}
	var sources []source
	if req.TLS != nil && len(req.TLS.Options) > 0 {
		opts := map[string]string{}
		for k, v := range req.TLS.Options {
			opts[string(k)] = string(v)
		}
		sources = append(sources, source{opts, owner, r.ListenerPath().Child("tls", "options")})
	}
	if req.ListenerSet != nil {
		sources = append(sources, source{req.ListenerSet.Annotations, owner, field.NewPath("metadata", "annotations")})
	}
	sources = append(sources, source{req.Gateway.Annotations, fmt.Sprintf("Gateway %s/%s", req.Gateway.Namespace, req.Gateway.Name), field.NewPath("metadata", "annotations")})
	for _, s := range sources {
		if ref, key := named(s.values[AnnotationClusterIssuer], s.values[AnnotationIssuer]); key != "" {
			r.Issuer, r.ChosenBy, r.Field = ref, s.by, s.field.Key(key)
			return r, true
		}
	}
	r.Issuer = r.ClassIssuer
	return r, r.Issuer.Kind != ""
}

// named reads a pair of issuer keys, the ClusterIssuer first, and returns
// the key that named it.
func named(clusterIssuer, issuer string) (tenancyv1.IssuerReference, string) {
	switch {
	case clusterIssuer != "":
		return tenancyv1.IssuerReference{Kind: cmv1.ClusterIssuerKind, Name: clusterIssuer}, AnnotationClusterIssuer
	case issuer != "":
		return tenancyv1.IssuerReference{Kind: cmv1.IssuerKind, Name: issuer}, AnnotationIssuer
	}
	return tenancyv1.IssuerReference{}, ""
}

// certificateName is readable and unique per listener of a cluster.
func certificateName(req translate.ListenerCertificateRequest) string {
	owner := "gw." + req.Gateway.Namespace + "." + req.Gateway.Name
	if req.ListenerSet != nil {
		owner = "ls." + req.ListenerSet.Namespace + "." + req.ListenerSet.Name
	}
	n := strings.ToLower(owner + "." + string(req.Listener))
	if len(n) > 200 {
		sum := sha256.Sum256([]byte(n))
		n = n[:180] + "." + hex.EncodeToString(sum[:])[:10]
	}
	return n
}

// ListenerCertificates implements translate.CertificateSource.
func (p *Pass) ListenerCertificates(req translate.ListenerCertificateRequest) translate.CertificateResult {
	asked, ok := request(p.cluster, req, p.i.classIssuers)
	if !ok {
		return translate.CertificateResult{} // certificateRefs, then
	}
	ref := cmmeta.IssuerReference{Name: asked.Issuer.Name, Kind: asked.Issuer.Kind, Group: "cert-manager.io"}
	if req.Hostname == "" {
		return translate.CertificateResult{Reason: gwv1.ListenerReasonInvalidCertificateRef,
			Message: fmt.Sprintf("%s %s asks for a certificate, but listener %q has no hostname to issue it for: set hostname", ref.Kind, ref.Name, req.Listener)}
	}
	if denials := p.auth.AuthorizeCertificate(asked); len(denials) > 0 {
		v := policy.Verdict{Denials: denials}
		return translate.CertificateResult{Reason: gwv1.ListenerConditionReason(v.Reason()),
			Message: fmt.Sprintf("the hub issues no certificate for listener %q: %s", req.Listener, v.Message())}
	}
	if p.waiting {
		return pending(notInstalled(fmt.Sprintf("%s %s", ref.Kind, ref.Name)))
	}
	name := certificateName(req)
	want := p.certificate(name, req, ref)
	p.wanted[name] = want
	have := p.have[name]
	switch {
	case p.readErr != nil:
		return pending(fmt.Sprintf("cert-manager Certificate %s/%s on the hub cannot be read yet: %v", p.ns, name, p.readErr))
	case have == nil:
		return pending(fmt.Sprintf("cert-manager Certificate %s/%s on the hub is being created", p.ns, name))
	case !sameSpec(have, want):
		return pending(fmt.Sprintf("cert-manager Certificate %s/%s on the hub is being updated for hostname %s", p.ns, name, req.Hostname))
	}
	// While cert-manager renews (the Certificate not Ready, or its Secret
	// briefly gone), the key pair published last keeps serving: a renewal
	// must not take the listener down.
	last := p.keyPairName(name)
	out, ready := p.issued[name]
	switch {
	case (!ready || out.err != nil) && p.served[last]:
		return translate.CertificateResult{KeyPairs: []string{last}}
	case !ready:
		why := "it has no Ready condition yet"
		if c := readyCondition(have); c != nil {
			why = fmt.Sprintf("%s: %s", c.Reason, c.Message)
		}
		return pending(fmt.Sprintf("cert-manager Certificate %s/%s (issuer %s %s) is not Ready: %s", p.ns, name, ref.Kind, ref.Name, why))
	case out.err != nil:
		return pending(fmt.Sprintf("cert-manager Certificate %s/%s is Ready but its key pair cannot be used yet: %v", p.ns, name, out.err))
	}
	return translate.CertificateResult{KeyPairs: []string{out.keyPair}}
}

// keyPairName is the push name of a Certificate's key pair.
func (p *Pass) keyPairName(certificate string) string { return keyPairPrefix(p.cluster) + certificate }

// keyPairPrefix starts the push names of a cluster's key pairs.
func keyPairPrefix(cluster string) string { return "hub/" + cluster + "/" }

func pending(msg string) translate.CertificateResult {
	return translate.CertificateResult{Reason: ReasonCertificatePending, Message: msg}
}

// isReady: cert-manager has issued the Certificate's current spec.
func isReady(c *cmv1.Certificate) bool {
	r := readyCondition(c)
	return r != nil && r.Status == cmmeta.ConditionTrue && r.ObservedGeneration == c.Generation
}

func readyCondition(c *cmv1.Certificate) *cmv1.CertificateCondition {
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == cmv1.CertificateConditionReady {
			return &c.Status.Conditions[i]
		}
	}
	return nil
}

func (p *Pass) certificate(name string, req translate.ListenerCertificateRequest, ref cmmeta.IssuerReference) *cmv1.Certificate {
	labels := map[string]string{LabelCluster: labelValue(p.cluster), "app.kubernetes.io/managed-by": "gatehouse"}
	owner := fmt.Sprintf("Gateway %s/%s", req.Gateway.Namespace, req.Gateway.Name)
	if req.ListenerSet != nil {
		owner = fmt.Sprintf("ListenerSet %s/%s", req.ListenerSet.Namespace, req.ListenerSet.Name)
	}
	return &cmv1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.ns, Labels: labels, Annotations: map[string]string{
			"gatehouse.dev/listener": fmt.Sprintf("cluster %s, %s, listener %s", p.cluster, owner, req.Listener)}},
		Spec: cmv1.CertificateSpec{
			SecretName:     name,
			DNSNames:       []string{req.Hostname},
			IssuerRef:      ref,
			PrivateKey:     &cmv1.CertificatePrivateKey{Algorithm: cmv1.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmv1.RotationPolicyAlways},
			SecretTemplate: &cmv1.CertificateSecretTemplate{Labels: labels},
		},
	}
}

// labelValue fits a cluster name into a label value.
func labelValue(s string) string {
	if len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return s[:52] + "-" + hex.EncodeToString(sum[:])[:10]
}

// publish ships a Ready Certificate's key pair to the push server under a
// name of its own, and returns that name. It reads the Secret only when the
// Certificate's issue is not the one published last.
func (p *Pass) publish(ctx context.Context, c *cmv1.Certificate) (string, error) {
	name := p.keyPairName(c.Name)
	rev := 0
	if c.Status.Revision != nil {
		rev = *c.Status.Revision
	}
	version := fmt.Sprintf("%s/%d/%v", c.UID, rev, c.Status.NotAfter)
	p.i.mu.Lock()
	done := p.i.published[name] == version
	p.i.mu.Unlock()
	if done {
		return name, nil
	}
	var s corev1.Secret
	if err := p.i.secret.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.SecretName}, &s); err != nil {
		return "", fmt.Errorf("reading Secret %s/%s: %w", c.Namespace, c.Spec.SecretName, err)
	}
	if _, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		return "", fmt.Errorf("Secret %s/%s: %w", c.Namespace, c.Spec.SecretName, err)
	}
	if _, err := p.i.keys.SetKeyPair(&routetable.KeyPair{Name: name, CertificateChain: s.Data[corev1.TLSCertKey], PrivateKey: s.Data[corev1.TLSPrivateKeyKey]}); err != nil {
		return "", err
	}
	p.i.mu.Lock()
	p.i.published[name] = version
	p.i.mu.Unlock()
	p.i.log.Info("listener certificate published", "cluster", p.cluster, "certificate", c.Namespace+"/"+c.Name, "revision", rev, "notAfter", c.Status.NotAfter)
	return name, nil
}

// Apply, after translation, creates or updates the Certificates the
// listeners wanted and deletes the cluster's others: a listener that went
// away takes its Certificate, its Secret and its published key pair with
// it. It returns ForPass's read error too, so that the pass is retried:
// the listeners are pending until the Certificates can be read.
func (p *Pass) Apply(ctx context.Context) error {
	if p.waiting {
		return nil
	}
	return errors.Join(p.readErr, p.apply(ctx))
}

func (p *Pass) apply(ctx context.Context) error {
	if len(p.wanted) > 0 {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.ns, Labels: map[string]string{LabelCluster: labelValue(p.cluster)}}}
		if err := p.i.c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s for the cluster's certificates: %w", p.ns, err)
		}
	}
	for name, want := range p.wanted {
		var have cmv1.Certificate
		err := p.i.c.Get(ctx, types.NamespacedName{Namespace: p.ns, Name: name}, &have)
		switch {
		case apierrors.IsNotFound(err):
			if err := p.i.c.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating Certificate %s/%s: %w", p.ns, name, err)
			}
		case err != nil:
			return err
		case !sameSpec(&have, want) || !equality.Semantic.DeepEqual(have.Labels, want.Labels):
			have.Spec.SecretName, have.Spec.DNSNames, have.Spec.IssuerRef = want.Spec.SecretName, want.Spec.DNSNames, want.Spec.IssuerRef
			have.Spec.PrivateKey, have.Spec.SecretTemplate = want.Spec.PrivateKey, want.Spec.SecretTemplate
			have.Labels, have.Annotations = want.Labels, want.Annotations
			if err := p.i.c.Update(ctx, &have); err != nil {
				return fmt.Errorf("updating Certificate %s/%s: %w", p.ns, name, err)
			}
		}
	}
	var list cmv1.CertificateList
	if err := p.i.c.List(ctx, &list, client.InNamespace(p.ns), p.label()); err != nil {
		return err
	}
	for i := range list.Items {
		c := &list.Items[i]
		if p.wanted[c.Name] != nil {
			continue
		}
		if err := client.IgnoreNotFound(p.i.c.Delete(ctx, c)); err != nil {
			return fmt.Errorf("deleting Certificate %s/%s: %w", c.Namespace, c.Name, err)
		}
		// cert-manager leaves the Secret behind: it holds a private key of
		// a listener that is gone.
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Spec.SecretName}}
		if err := client.IgnoreNotFound(p.i.c.Delete(ctx, s)); err != nil {
			return fmt.Errorf("deleting Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		if err := p.i.unpublish(p.keyPairName(c.Name)); err != nil {
			return err
		}
	}
	return nil
}

// unpublish withdraws a key pair from the push server: the private key of a
// listener that is gone stays in the hub's memory no longer than it.
func (i *Issuer) unpublish(name string) error {
	i.mu.Lock()
	delete(i.published, name)
	i.mu.Unlock()
	if err := i.keys.DeleteKeyPair(name); err != nil {
		return fmt.Errorf("withdrawing key pair %s from the push server: %w", name, err)
	}
	return nil
}

// Forget withdraws every key pair published for a cluster that left the
// fleet. Its Certificates stay on the hub until it joins again, or its
// namespace is deleted.
func (i *Issuer) Forget(cluster string) error {
	prefix := keyPairPrefix(cluster)
	i.mu.Lock()
	var names []string
	for name := range i.published {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	i.mu.Unlock()
	var errs []error
	for _, name := range names {
		errs = append(errs, i.unpublish(name))
	}
	return errors.Join(errs...)
}

// sameSpec compares the fields we set, leaving whatever defaulting added.
func sameSpec(have, want *cmv1.Certificate) bool {
	h, w := have.Spec, want.Spec
	return h.SecretName == w.SecretName && equality.Semantic.DeepEqual(h.DNSNames, w.DNSNames) &&
		h.IssuerRef.Name == w.IssuerRef.Name && h.IssuerRef.Kind == w.IssuerRef.Kind &&
		h.PrivateKey != nil && h.PrivateKey.Algorithm == w.PrivateKey.Algorithm && h.PrivateKey.Size == w.PrivateKey.Size &&
		h.PrivateKey.RotationPolicy == w.PrivateKey.RotationPolicy
}

// SetupWithManager watches the hub's Certificates (mgr is the hub's own
// manager): a change translates the member it belongs to again.
func (i *Issuer) SetupWithManager(mgr ctrl.Manager, trigger func(cluster string), clusters func() []string) error {
	toCluster := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		v := o.GetLabels()[LabelCluster]
		for _, c := range clusters() {
			if labelValue(c) == v {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: c}}}
			}
		}
		return nil
	})
	ours := builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetLabels()[LabelCluster]
		return ok
	}))
	return ctrl.NewControllerManagedBy(mgr).Named("gatehouse-certificates").
		Watches(&cmv1.Certificate{}, toCluster, ours).
		Complete(reconcile.Func(func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
			trigger(req.Name)
			return reconcile.Result{}, nil
		}))
}
