// Package policycheck evaluates a RoutePolicy against route files offline,
// as `gatehousectl policy test` does. It asks the same policy.Decider, with
// the same rego.Engine and the same data.gatehouse.tenants, that the hub
// computes status with and the admission webhook answers with: a verdict
// here is the verdict a tenant gets there.
package policycheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/manifest"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/policy/rego"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// Options of a check.
type Options struct {
	// PolicyFile is a Rego module (.rego) or a RoutePolicy (.yaml, .yml).
	PolicyFile string
	// Name, Enforcement and ParametersFile, when set, replace the policy's.
	// A .rego file's policy is named after the file and enforces deny.
	Name           string
	Enforcement    string
	ParametersFile string
	// RouteFile holds the routes (of policy.RouteKinds) and ListenerSets to check;
	// "-" reads standard input.
	RouteFile string
	// Kind of the documents that name none.
	Kind string
	// Tenant, when set, is the routes' tenant whatever their namespace.
	Tenant string
	// TenantsFile holds Tenants: their data under data.gatehouse.tenants,
	// the namespace → tenant mapping and tenancy's own checks (namespace,
	// hostnames).
	TenantsFile string
	// Unassigned: what namespaces of no tenant get, as the hub's
	// --unassigned-namespaces.
	Unassigned tenancy.Unassigned
	// Cluster the routes live in, with the labels of its hub Secret.
	Cluster tenancy.Cluster
	// NamespaceLabels of the routes' namespaces, for Tenants that select
	// namespaces by label.
	NamespaceLabels map[string]string
	// Operation is CREATE or UPDATE as at admission; empty as when the hub
	// computes status.
	Operation string
}

// Outcome is what the hub does with a route.
type Outcome string

const (
	Allowed Outcome = "allowed"
	Denied  Outcome = "denied"
	Warned  Outcome = "warned"
)

// Result is the verdict on one route.
type Result struct {
	Kind, Namespace, Name string
	Tenant                string
	Outcome               Outcome
	// Applies is false when the policy's spec.match leaves the route out.
	Applies bool
	// Tenancy are tenancy's denials (only with a TenantsFile).
	Tenancy []policy.Denial
	// Violations of the policy, with the field each names, whatever the
	// enforcement; Enforcement says what they do.
	Violations  []*field.Error
	Enforcement v1alpha1.Enforcement
}

// CompileError is a policy that does not compile; its message has the
// file, line and column of each error.
type CompileError struct {
	Policy string
	Err    error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("RoutePolicy %q does not compile:\n%v", e.Policy, e.Err)
}

func (e *CompileError) Unwrap() error { return e.Err }

// Check evaluates the policy against every route of the route file.
func Check(ctx context.Context, o Options) ([]Result, error) {
	rp, err := readPolicy(o)
	if err != nil {
		return nil, err
	}
	pol, err := policy.NewPolicy(rp)
	if err != nil {
		return nil, err
	}
	var tenants []*tenancyv1.Tenant
	if o.TenantsFile != "" {
		if tenants, err = readTenants(o.TenantsFile); err != nil {
			return nil, err
		}
	}
	view := tenancy.NewView(tenants, o.Unassigned)
	engine := rego.New(rego.Options{})
	if err := engine.SetData(ctx, "tenants", policy.TenantData(view)); err != nil {
		return nil, err
	}
	mod := rego.Module{Name: rp.Name, Source: rp.Spec.Rego}
	if rp.Spec.Parameters != nil {
		mod.Parameters = rp.Spec.Parameters.Raw
	}
	if errs := engine.Load([]rego.Module{mod}); errs[rp.Name] != nil {
		return nil, &CompileError{Policy: rp.Name, Err: atFile(errs[rp.Name], rp.Name, o.PolicyFile)}
	}
	routes, err := readRoutes(o.RouteFile, o.Kind)
	if err != nil {
		return nil, err
	}

	// The decider the hub builds, and one whose copy of the policy denies
	// whatever its enforcement: its denials carry each violation's field,
	// which warnings and audit counts do not.
	decider := &policy.Decider{Tenancy: view, Engine: engine, Policies: map[string]*policy.Policy{rp.Name: pol}}
	strict := *pol
	strict.Enforcement = v1alpha1.Deny
	details := &policy.Decider{Tenancy: view, Engine: engine, Policies: map[string]*policy.Policy{rp.Name: &strict}}

	out := make([]Result, 0, len(routes))
	for _, r := range routes {
		out = append(out, check(ctx, o, decider, details, pol, r))
	}
	return out, nil
}

type route struct {
	kind string
	obj  client.Object
}

// check decides one route with the composition the hub's status pass and
// the admission webhook use (policy.Decider.Verdict): the namespace's
// tenant, tenancy's checks, the policies. Tenant limits and attachments
// need the fleet and are left out: the decider counts no routes and is
// asked of no listener. Without a TenantsFile there is no tenancy to
// check, whatever Tenant says.
func check(ctx context.Context, o Options, decider, details *policy.Decider, pol *policy.Policy, r route) Result {
	s := policy.Subject{Cluster: o.Cluster, Kind: r.kind, Object: r.obj, Operation: o.Operation, NamespaceLabels: o.NamespaceLabels}
	tenant := o.Tenant
	if tenant == "" {
		tenant = decider.Tenancy.TenantOf(s.Cluster, r.obj.GetNamespace(), s.NamespaceLabels)
	}
	res := Result{Kind: r.kind, Namespace: r.obj.GetNamespace(), Name: r.obj.GetName(), Tenant: tenant,
		Applies: pol.Matches(tenant, s), Enforcement: pol.Enforcement}
	verdict := decider.Verdict(tenant, s, decider.Evaluate(ctx, tenant, s))
	for _, d := range verdict.Denials {
		if d.Reason != policy.ReasonPolicyViolation {
			res.Tenancy = append(res.Tenancy, d)
		}
	}
	for _, d := range details.Evaluate(ctx, tenant, s).Denials {
		res.Violations = append(res.Violations, d.Err)
	}
	switch {
	case !verdict.Allowed():
		res.Outcome = Denied
	case len(verdict.Warnings) > 0:
		res.Outcome = Warned
	default:
		res.Outcome = Allowed
	}
	return res
}

// atFile names the policy file in compile errors, which the engine reports
// against <name>.rego: the .rego file itself, or the RoutePolicy file's
// spec.rego, whose lines the positions count.
func atFile(err error, name, file string) error {
	at := file + ":"
	if !isRego(file) {
		at = file + " spec.rego:"
	}
	return errors.New(strings.ReplaceAll(err.Error(), name+".rego:", at))
}

func isRego(file string) bool { return strings.EqualFold(filepath.Ext(file), ".rego") }

func readPolicy(o Options) (*v1alpha1.RoutePolicy, error) {
	rp := &v1alpha1.RoutePolicy{}
	switch ext := strings.ToLower(filepath.Ext(o.PolicyFile)); ext {
	case ".yaml", ".yml", ".json":
		docs, err := manifest.ReadFile(o.PolicyFile)
		if err != nil {
			return nil, err
		}
		if len(docs) != 1 || docs[0].Kind != "RoutePolicy" {
			return nil, fmt.Errorf("%s: want one RoutePolicy (policy.gatehouse.dev/v1alpha1), found %s", o.PolicyFile, kinds(docs))
		}
		if err := docs[0].Into(rp); err != nil {
			return nil, fmt.Errorf("%s: %w", o.PolicyFile, err)
		}
	default:
		src, err := os.ReadFile(o.PolicyFile)
		if err != nil {
			return nil, err
		}
		rp.Name = strings.TrimSuffix(filepath.Base(o.PolicyFile), filepath.Ext(o.PolicyFile))
		rp.Spec.Rego = string(src)
	}
	if o.Name != "" {
		rp.Name = o.Name
	}
	if rp.Name == "" {
		return nil, fmt.Errorf("%s: the RoutePolicy has no metadata.name; give one with --name", o.PolicyFile)
	}
	if o.Enforcement != "" {
		rp.Spec.Enforcement = v1alpha1.Enforcement(o.Enforcement)
	}
	switch rp.Spec.Enforcement {
	case "", v1alpha1.Deny, v1alpha1.Warn, v1alpha1.Audit:
	default:
		return nil, fmt.Errorf("enforcement %q: want deny, warn or audit", rp.Spec.Enforcement)
	}
	if o.ParametersFile != "" {
		raw, err := os.ReadFile(o.ParametersFile)
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.ParametersFile, err)
		}
		rp.Spec.Parameters = &apiextensionsv1.JSON{Raw: js}
	}
	return rp, nil
}

func readTenants(file string) ([]*tenancyv1.Tenant, error) {
	docs, err := manifest.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out := make([]*tenancyv1.Tenant, 0, len(docs))
	for _, d := range docs {
		if d.Kind != "Tenant" {
			return nil, fmt.Errorf("%s: object #%d is a %q, not a Tenant (tenancy.gatehouse.dev/v1alpha1)", file, d.Index+1, d.Kind)
		}
		t := &tenancyv1.Tenant{}
		if err := d.Into(t); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func readRoutes(file, kind string) ([]route, error) {
	var docs []manifest.Document
	var err error
	if file == "-" {
		docs, err = manifest.Read(os.Stdin)
	} else {
		docs, err = manifest.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no route in the file", file)
	}
	out := make([]route, 0, len(docs))
	for _, d := range docs {
		k := d.Kind
		if k == "" {
			k = kind
		}
		if gv, err := schema.ParseGroupVersion(d.APIVersion); err != nil || (d.APIVersion != "" && gv.Group != gwv1.GroupName) {
			return nil, fmt.Errorf("%s: object #%d: apiVersion %q is not of %s", file, d.Index+1, d.APIVersion, gwv1.GroupName)
		}
		obj := policy.NewObject(k)
		if obj == nil {
			return nil, fmt.Errorf("%s: object #%d is a %q; policies judge %ss and ListenerSets", file, d.Index+1, k, strings.Join(policy.RouteKinds, "s, "))
		}
		if err := d.Into(obj); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if obj.GetNamespace() == "" {
			obj.SetNamespace("default")
		}
		out = append(out, route{kind: k, obj: obj})
	}
	return out, nil
}

func kinds(docs []manifest.Document) string {
	if len(docs) == 0 {
		return "no object"
	}
	ks := make([]string, len(docs))
	for i, d := range docs {
		ks[i] = d.Kind
	}
	return strings.Join(ks, ", ")
}

// Write prints each result: the outcome, the route and its tenant, then a
// line per denial or violation with the field it names.
func Write(w io.Writer, results []Result) error {
	var b strings.Builder
	for _, r := range results {
		tenant := "no tenant"
		if r.Tenant != "" {
			tenant = fmt.Sprintf("tenant %q", r.Tenant)
		}
		fmt.Fprintf(&b, "%s: %s %s/%s (%s)\n", r.Outcome, r.Kind, r.Namespace, r.Name, tenant)
		for _, d := range r.Tenancy {
			fmt.Fprintf(&b, "  - %s: %s: %s\n", d.Err.Field, d.Reason, d.Err.Detail)
		}
		if !r.Applies {
			b.WriteString("  (the policy's spec.match leaves this route out: other tenants, kinds or clusters)\n")
		}
		for _, v := range r.Violations {
			suffix := ""
			if r.Enforcement == v1alpha1.Audit {
				suffix = " (audit: counted in the policy's status, not enforced)"
			}
			fmt.Fprintf(&b, "  - %s: %s%s\n", v.Field, strings.ReplaceAll(v.Detail, "\n", "\n    "), suffix)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// AnyDenied reports whether some route is denied.
func AnyDenied(results []Result) bool {
	for _, r := range results {
		if r.Outcome == Denied {
			return true
		}
	}
	return false
}
