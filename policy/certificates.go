package policy

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/gatewayapi/hostnames"
	"github.com/gatehouse-dev/gatehouse/tenancy"
	tenancyv1 "github.com/gatehouse-dev/gatehouse/tenancy/api/v1alpha1"
)

// Reasons of ours on a listener's ResolvedRefs condition when the hub
// refuses to issue its certificate.
const (
	// ReasonIssuerNotDelegated: the listener names an issuer that is
	// neither its GatewayClass's nor delegated to its owner's tenant.
	ReasonIssuerNotDelegated = "IssuerNotDelegated"
	// ReasonCertificateCoversOtherTenant: a wildcard certificate for the
	// listener would be valid for a hostname delegated to another tenant.
	ReasonCertificateCoversOtherTenant = "CertificateCoversOtherTenant"
	// ReasonHostnameInvalid: the listener's hostname is not one a
	// certificate can be issued for.
	ReasonHostnameInvalid = "HostnameInvalid"
)

// CertificateRequest is a listener's request for a certificate the hub
// issues. Its owner is the ListenerSet the listener comes from, or else
// the Gateway.
type CertificateRequest struct {
	Cluster     tenancy.Cluster
	Gateway     *gwv1.Gateway
	ListenerSet *gwv1.ListenerSet
	Listener    gwv1.SectionName
	// Hostname is the listener's, the one name the certificate is for.
	Hostname string
	// Issuer is the issuer asked for. ChosenBy names the object and Field
	// the field that chose it; Field is nil when the class's issuer applies.
	Issuer   tenancyv1.IssuerReference
	ChosenBy string
	Field    *field.Path
	// Class is the Gateway's GatewayClass and ClassIssuer the issuer its
	// parameters name (Kind "" for none).
	Class       string
	ClassIssuer tenancyv1.IssuerReference
	// Offered are the issuers the hub lets GatewayClasses name (its
	// --class-issuers). A class's parameters live in the member cluster,
	// where its admin may write them: only the hub's list makes an issuer
	// the platform team's.
	Offered []tenancyv1.IssuerReference
}

// owner is the object that holds the listener.
func (r CertificateRequest) owner() client.Object {
	if r.ListenerSet != nil {
		return r.ListenerSet
	}
	return r.Gateway
}

func (r CertificateRequest) ownerName() string {
	if r.ListenerSet != nil {
		return fmt.Sprintf("ListenerSet %s/%s", r.ListenerSet.Namespace, r.ListenerSet.Name)
	}
	return fmt.Sprintf("Gateway %s/%s", r.Gateway.Namespace, r.Gateway.Name)
}

// ListenerPath is the field of the listener in its owner's spec.
func (r CertificateRequest) ListenerPath() *field.Path {
	i := 0
	if r.ListenerSet != nil {
		for j, l := range r.ListenerSet.Spec.Listeners {
			if l.Name == r.Listener {
				i = j
			}
		}
	} else {
		for j, l := range r.Gateway.Spec.Listeners {
			if l.Name == r.Listener {
				i = j
			}
		}
	}
	return field.NewPath("spec", "listeners").Index(i)
}

// Certificate decides whether the hub may issue the certificate a listener
// asks for, whose owner's namespace belongs to tenant ("" for none). The
// issuer must be the GatewayClass's or one delegated to the tenant; the
// hostname must be the tenant's under fleet-wide ownership (for no tenant:
// held by no tenant); and a wildcard must not be valid for a hostname of
// another tenant, unless the listener is a Gateway's own that the platform
// shares with that tenant (its spec.gateways), whose routes it then serves.
func (d *Decider) Certificate(tenant string, r CertificateRequest) []Denial {
	var out []Denial
	if deny := d.certificateIssuer(tenant, r); deny != nil {
		out = append(out, *deny)
	}
	p := r.ListenerPath().Child("hostname")
	if deny := certificateHostname(r.Hostname, p); deny != nil {
		return append(out, *deny)
	}
	s := Subject{Cluster: r.Cluster, Kind: "Gateway", Object: r.owner()}
	if r.ListenerSet != nil {
		s.Kind = "ListenerSet"
	}
	if deny := d.hostname(tenant, s, r.Hostname, p); deny != nil {
		out = append(out, *deny)
		return out
	}
	return append(out, d.certificateCovers(tenant, r, p)...)
}

func (d *Decider) certificateIssuer(tenant string, r CertificateRequest) *Denial {
	if r.Field == nil || r.Issuer == r.ClassIssuer {
		return classIssuer(r)
	}
	if tenant != "" && d.Tenancy.AllowsIssuer(tenant, r.Issuer) {
		return nil
	}
	class := fmt.Sprintf("GatewayClass %q names no issuer", r.Class)
	if r.ClassIssuer.Kind != "" {
		class = fmt.Sprintf("GatewayClass %q names %s %q", r.Class, r.ClassIssuer.Kind, r.ClassIssuer.Name)
	}
	asked := fmt.Sprintf("%s %q, chosen by %s,", r.Issuer.Kind, r.Issuer.Name, r.ChosenBy)
	if tenant == "" {
		return &Denial{ReasonIssuerNotDelegated, field.Forbidden(r.Field, fmt.Sprintf(
			"%s is not the issuer of the listener's class (%s), and namespace %q of %s belongs to no tenant: only the platform team chooses its issuers; remove the choice to use the class's issuer, or use a GatewayClass whose parameters name this one",
			asked, class, r.owner().GetNamespace(), r.ownerName()))}
	}
	return &Denial{ReasonIssuerNotDelegated, field.Forbidden(r.Field, fmt.Sprintf(
		"%s is not delegated to tenant %q (%s; the tenant's spec.certificates.issuers: %s): remove the choice to use the class's issuer, or ask the platform team to delegate this one",
		asked, tenant, class, d.Tenancy.DescribeIssuers(tenant)))}
}

// classIssuer refuses a class's issuer the hub does not offer to classes.
func classIssuer(r CertificateRequest) *Denial {
	if r.ClassIssuer.Kind == "" || slices.Contains(r.Offered, r.ClassIssuer) {
		return nil
	}
	offered := "none"
	if len(r.Offered) > 0 {
		names := make([]string, len(r.Offered))
		for i, o := range r.Offered {
			names[i] = o.Kind + "/" + o.Name
		}
		offered = strings.Join(names, ", ")
	}
	return &Denial{ReasonIssuerNotDelegated, field.Forbidden(field.NewPath("spec", "gatewayClassName"), fmt.Sprintf(
		"GatewayClass %q names %s %q in its parameters, which the hub does not offer to GatewayClasses (offered: %s): a class's parameters are written in the member cluster, so the platform team lists on the hub (--class-issuers) the issuers a class may name; name one of those, or ask the platform team to offer this one",
		r.Class, r.ClassIssuer.Kind, r.ClassIssuer.Name, offered))}
}

// certificateHostname refuses a hostname no certificate should be issued
// for, whatever a member's CRDs let through: one name or one wildcard
// label, lower case, no trailing dot.
func certificateHostname(h string, p *field.Path) *Denial {
	name := strings.TrimPrefix(h, "*.")
	if h != strings.ToLower(h) || len(validation.IsDNS1123Subdomain(name)) > 0 || strings.Contains(name, "*") {
		return &Denial{ReasonHostnameInvalid, field.Invalid(p, h,
			"a certificate is issued only for a DNS name or a wildcard of one label (*.example.com), in lower case and without a trailing dot")}
	}
	return nil
}

// certificateCovers refuses a wildcard that TLS clients would accept for a
// hostname delegated to a tenant other than the requester's.
func (d *Decider) certificateCovers(tenant string, r CertificateRequest, p *field.Path) []Denial {
	if !strings.HasPrefix(r.Hostname, "*.") {
		return nil
	}
	var out []Denial
	for _, del := range d.Tenancy.Delegated(r.Hostname) {
		h, owner := del[0], del[1]
		if owner == tenant || !hostnames.CertificateCovers(r.Hostname, h) {
			continue
		}
		if tenant == "" && r.ListenerSet == nil && d.Tenancy.NamesGateway(owner, r.Cluster, r.Gateway, r.Listener) {
			continue // the platform's shared listener, which serves that tenant's routes
		}
		who := fmt.Sprintf("namespace %q belongs to no tenant and listener %q of %s is not delegated to tenant %q", r.owner().GetNamespace(), r.Listener, r.ownerName(), owner)
		fix := "use a hostname no tenant holds within it, or have the platform team name this Gateway (namespace and name) in the tenant's spec.gateways"
		if tenant != "" {
			who = fmt.Sprintf("this namespace belongs to tenant %q", tenant)
			fix = fmt.Sprintf("use hostnames within the tenant's delegation that no other tenant holds (delegated: %s)", d.delegated(tenant))
		}
		out = append(out, Denial{ReasonCertificateCoversOtherTenant, field.Forbidden(p, fmt.Sprintf(
			"a certificate for %q would be valid for %q, which is delegated to tenant %q; %s: %s", r.Hostname, h, owner, who, fix))})
	}
	return out
}
