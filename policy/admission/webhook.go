// Package admission is the validating webhook that member clusters call
// when a tenant applies a route (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute,
// UDPRoute) or a ListenerSet. It asks the
// same Decider the hub computes status with, and refuses only what tenancy
// and deny policies refuse: a missing backend or ReferenceGrant is for
// status to report, since Kubernetes lets objects be created in any order.
package admission

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/referencegrant"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tenancy"
)

// PathPrefix is followed by the member cluster's name and that member's
// token (see Path): a member's API server calls the hub by URL, and the
// token, which only the hub can compute, proves which member calls.
const PathPrefix = "/validate/"

// Path is the path member's API server calls the webhook at, with token as
// Authenticator knows it.
func Path(member, token string) string { return PathPrefix + member + "/" + token }

// Authenticator tells the members' API servers from everyone else.
type Authenticator interface {
	// Authentic reports whether token is the one the hub gave member.
	Authentic(member, token string) bool
}

// Fleet is what the webhook needs of the hub.
type Fleet interface {
	// Cluster returns the hub's cached reader of a member and the member's
	// labels; false when the hub does not serve that cluster.
	Cluster(name string) (client.Reader, tenancy.Cluster, bool)
	// Decider is the current decision function.
	Decider() *policy.Decider
}

// Options configure the webhook.
type Options struct {
	// Controller is the controllerName of our GatewayClasses.
	Controller gwv1.GatewayController
	// Timeout bounds one decision; the API server's own is longer.
	Timeout time.Duration
	Log     *slog.Logger
}

type clusterKey struct{}

// New returns the handler of PathPrefix. It answers only callers whose path
// carries the token of the member it names; the member's name is taken from
// that path alone, and whoever made the change from the AdmissionReview
// that member's API server sent.
func New(fleet Fleet, auth Authenticator, scheme *runtime.Scheme, opts Options) http.Handler {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	v := &validator{fleet: fleet, decoder: admission.NewDecoder(scheme), opts: opts}
	return &authenticated{auth: auth, log: opts.Log, next: &admission.Webhook{Handler: v, RecoverPanic: ptrTrue()}}
}

func ptrTrue() *bool { b := true; return &b }

// authenticated passes on only the calls of members' API servers.
type authenticated struct {
	auth Authenticator
	log  *slog.Logger
	next http.Handler
}

// ServeHTTP refuses every caller without the token of the member its path
// names before reading anything else of the request, with the same answer
// whatever was wrong, so that a refusal tells nothing about the fleet.
func (a *authenticated) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	member, token, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, PathPrefix), "/")
	if !ok || member == "" || !strings.HasPrefix(r.URL.Path, PathPrefix) || !a.auth.Authentic(member, token) {
		unauthenticatedTotal.Inc()
		a.log.Debug("refused an admission call without its member's token", "remote", r.RemoteAddr, "path", PathPrefix+member)
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return
	}
	a.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clusterKey{}, member)))
}

type validator struct {
	fleet   Fleet
	decoder admission.Decoder
	opts    Options
}

// Handle decides one admission request.
func (v *validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	cluster, _ := ctx.Value(clusterKey{}).(string)
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	obj, old, kind, err := v.decode(req)
	if err != nil {
		return admission.Allowed("").WithWarnings(fmt.Sprintf("gatehouse could not read the object (%v); its status will tell whether it is accepted", err))
	}
	if obj == nil {
		return admission.Allowed("")
	}
	if req.Operation == admissionv1.Update && (obj.GetDeletionTimestamp() != nil || sameSpec(obj, old)) {
		// Metadata-only changes and finalizer removal must go through even
		// for a refused object, or it could never be deleted.
		return admission.Allowed("")
	}
	reader, cl, ok := v.fleet.Cluster(cluster)
	if !ok {
		return admission.Allowed("").WithWarnings(fmt.Sprintf("the gatehouse hub does not serve cluster %q yet; the object's status will tell whether it is accepted", cluster))
	}
	var ns corev1.Namespace
	if err := reader.Get(ctx, types.NamespacedName{Name: obj.GetNamespace()}, &ns); err != nil {
		v.opts.Log.Debug("namespace not in the hub's cache", "cluster", cluster, "namespace", obj.GetNamespace(), "error", err)
	}
	d := v.fleet.Decider()
	s := policy.Subject{Cluster: cl, Kind: kind, Object: obj, OldObject: old, Operation: string(req.Operation), UserInfo: req.UserInfo, NamespaceLabels: ns.Labels,
		Grants: grants(ctx, reader)}
	verdict := d.Decide(ctx, s)
	if verdict.Allowed() {
		// A refused object is refused at every listener (Attached): its
		// Gateways need not be read.
		verdict = d.Attached(verdict, s, Attachments(ctx, reader, v.opts.Controller, obj, ns.Labels)...)
	}
	if !verdict.Allowed() {
		denialsTotal.WithLabelValues(cluster, verdict.Reason()).Inc()
		v.opts.Log.Info("admission denied", "cluster", cluster, "kind", kind, "namespace", obj.GetNamespace(), "name", obj.GetName(), "tenant", verdict.Tenant, "reason", verdict.Reason())
		resp := admission.Denied(verdict.Message())
		resp.Result.Reason = "Forbidden"
		resp.Result.Details = nil
		return resp.WithWarnings(verdict.Warnings...)
	}
	return admission.Allowed("").WithWarnings(verdict.Warnings...)
}

func (v *validator) decode(req admission.Request) (obj, old client.Object, kind string, err error) {
	kind = req.Kind.Kind
	if obj = policy.NewObject(kind); obj == nil || len(req.Object.Raw) == 0 {
		return nil, nil, kind, nil
	}
	if err := v.decoder.DecodeRaw(req.Object, obj); err != nil {
		return nil, nil, kind, err
	}
	if len(req.OldObject.Raw) > 0 {
		old = policy.NewObject(kind)
		if err := v.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return nil, nil, kind, err
		}
	}
	return obj, old, kind, nil
}

// sameSpec reports whether an update leaves the spec as it was.
func sameSpec(obj, old client.Object) bool {
	if obj == nil || old == nil {
		return false
	}
	a, b := reflect.ValueOf(obj).Elem(), reflect.ValueOf(old).Elem()
	if a.Type() != b.Type() {
		return false
	}
	// Every kind policy.NewObject knows has a Spec field.
	return apiequality.Semantic.DeepEqual(a.FieldByName("Spec").Interface(), b.FieldByName("Spec").Interface())
}

// grants reads the member's ReferenceGrants from the hub's cache.
func grants(ctx context.Context, r client.Reader) *referencegrant.Index {
	var list gwv1beta1.ReferenceGrantList
	if r.List(ctx, &list) != nil {
		return nil
	}
	items := make([]*gwv1beta1.ReferenceGrant, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	return referencegrant.New(nil, items)
}
