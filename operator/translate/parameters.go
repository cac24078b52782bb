package translate

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// How the proxies of a GatewayClass's Gateways run.
const (
	// ModeManaged: the hub creates each Gateway's proxy Deployment and
	// LoadBalancer Service in the member; addresses come from the Service.
	ModeManaged = "managed"
	// ModeExternal: proxies run elsewhere; the parameters give the
	// addresses, or else each Gateway's proxies report where they answer.
	ModeExternal = "external"
)

// ClassParameters are what a GatewayClass's parametersRef, a ConfigMap,
// says. Keys: "mode" (managed or external) and, for external mode,
// "addresses" (comma-separated IPs or hostnames the proxies answer on; when
// empty, each Gateway gets the addresses its connected proxies advertise);
// "clusterIssuer" or "issuer" name the cert-manager issuer of HTTPS
// listeners without certificateRefs; "adminPort" is the port of the
// proxies' admin server, reserved for it (DefaultAdminPort when absent);
// the keys of limitDurations and limitCounts bound what clients, backends and routes may cost
// the proxies (docs/limits.md); ProxySettingKeys shape managed-mode proxies
// (docs/managed-proxies.md).
type ClassParameters struct {
	Mode      string
	Addresses []gwv1.GatewayStatusAddress
	// AdminPort is where the class's proxies serve /metrics, /healthz and
	// /readyz; no listener may use it. Zero means DefaultAdminPort.
	AdminPort int32
	// ClusterIssuer and Issuer name a cert-manager issuer on the hub.
	ClusterIssuer, Issuer string
	// Limits go into every route table of the class, each field set.
	Limits *routetable.Limits
	// Proxy shapes the class's managed proxies; each Gateway may override
	// it (gatewayProxySettings), asking for at most MaxReplicas replicas
	// (zero: DefaultMaxReplicas).
	Proxy       ProxySettings
	MaxReplicas int32
}

// classParameters reads a GatewayClass's parameters, or says what is wrong.
func (t *translator) classParameters(gc *gwv1.GatewayClass) (ClassParameters, string) {
	params := ClassParameters{Mode: ModeManaged, AdminPort: DefaultAdminPort, Limits: routetable.DefaultLimits()}
	p := gc.Spec.ParametersRef
	if p == nil {
		return params, ""
	}
	if p.Group != "" || p.Kind != "ConfigMap" {
		return params, fmt.Sprintf("spec.parametersRef: %s/%s is not supported: refer to a ConfigMap", orCore(string(p.Group)), p.Kind)
	}
	if p.Namespace == nil || *p.Namespace == "" {
		return params, "spec.parametersRef.namespace is required: a GatewayClass is cluster-scoped"
	}
	cm := t.configMaps[key(string(*p.Namespace), p.Name)]
	if cm == nil {
		return params, fmt.Sprintf("spec.parametersRef: ConfigMap %s/%s does not exist", *p.Namespace, p.Name)
	}
	if why := tooLarge(cm); why != "" {
		return params, fmt.Sprintf("spec.parametersRef: ConfigMap %s/%s %s: keep only the parameters in it", *p.Namespace, p.Name, why)
	}
	params.ClusterIssuer, params.Issuer = strings.TrimSpace(cm.Data["clusterIssuer"]), strings.TrimSpace(cm.Data["issuer"])
	if port, problem := parseAdminPort(cm.Data["adminPort"]); problem != "" {
		return params, fmt.Sprintf("ConfigMap %s/%s: %s", cm.Namespace, cm.Name, problem)
	} else if port != 0 {
		params.AdminPort = port
	}
	limits, problems := parseLimits(cm.Data)
	if len(problems) > 0 {
		return params, fmt.Sprintf("ConfigMap %s/%s: %s", cm.Namespace, cm.Name, strings.Join(problems, "; "))
	}
	params.Limits = limits
	if problem := params.readProxySettings(cm); problem != "" {
		return params, fmt.Sprintf("ConfigMap %s/%s: %s", cm.Namespace, cm.Name, problem)
	}
	switch mode := strings.TrimSpace(cm.Data["mode"]); mode {
	case "", ModeManaged:
	case ModeExternal:
		params.Mode = ModeExternal
	default:
		return params, fmt.Sprintf("ConfigMap %s/%s: mode %q is not one of managed, external", cm.Namespace, cm.Name, mode)
	}
	for _, a := range strings.Split(cm.Data["addresses"], ",") {
		if a = strings.TrimSpace(a); a != "" {
			params.Addresses = append(params.Addresses, StatusAddress(a))
		}
	}
	return params, ""
}

// StatusAddress types an address for a Gateway's status: an IP address, or
// else a hostname.
func StatusAddress(value string) gwv1.GatewayStatusAddress {
	typ := gwv1.HostnameAddressType
	if _, err := netip.ParseAddr(value); err == nil {
		typ = gwv1.IPAddressType
	}
	return gwv1.GatewayStatusAddress{Type: &typ, Value: value}
}

// readProxySettings reads the class's maxReplicas and proxy settings, or
// says what is wrong with them.
func (p *ClassParameters) readProxySettings(cm *corev1.ConfigMap) string {
	max, err := parseMaxReplicas(cm.Data["maxReplicas"])
	if err != nil {
		return err.Error()
	}
	p.MaxReplicas = max
	settings, errs := parseProxySettings(cm, scopeClass, p.maxReplicas())
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	p.Proxy = settings
	return ""
}
