package translate

import (
	"fmt"
	"net/netip"
	"slices"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayAddresses are the addresses a Gateway reports, given those
// assigned to it (the class's, its proxies' Service's, or what its proxies
// advertise): the values its spec.addresses names, then, for each address
// there with a type and no value, the assigned addresses of that type; with
// no spec.addresses, every assigned address. The spec
// (GatewaySpecAddress.Value): "When a value is unspecified, an
// implementation SHOULD automatically assign an address matching the
// requested type if possible." unassigned lists the types asked for that
// no assigned address has; problem says why spec.addresses cannot be
// served at all (then there are no addresses).
func GatewayAddresses(spec []gwv1.GatewaySpecAddress, assigned []gwv1.GatewayStatusAddress) (addrs []gwv1.GatewayStatusAddress, unassigned []gwv1.AddressType, problem string) {
	addrs, requested, problem := staticAddresses(spec)
	if problem != "" {
		return nil, nil, problem
	}
	if len(spec) == 0 {
		return assigned, nil, ""
	}
	for _, typ := range requested {
		found := false
		for _, a := range assigned {
			if addressType(a.Type) != typ {
				continue
			}
			found = true
			if !slices.ContainsFunc(addrs, func(b gwv1.GatewayStatusAddress) bool { return addressType(b.Type) == typ && b.Value == a.Value }) {
				addrs = append(addrs, a)
			}
		}
		if !found {
			unassigned = append(unassigned, typ)
		}
	}
	return addrs, unassigned, ""
}

// staticAddresses validates spec.addresses: the addresses it names, and
// the types of those it asks to be assigned (a type without a value), each
// once.
func staticAddresses(spec []gwv1.GatewaySpecAddress) ([]gwv1.GatewayStatusAddress, []gwv1.AddressType, string) {
	var out []gwv1.GatewayStatusAddress
	var requested []gwv1.AddressType
	for i, a := range spec {
		typ := addressType(a.Type)
		switch typ {
		case gwv1.IPAddressType:
			if _, err := netip.ParseAddr(a.Value); a.Value != "" && err != nil {
				return nil, nil, fmt.Sprintf("spec.addresses[%d]: %q is not an IP address", i, a.Value)
			}
		case gwv1.HostnameAddressType:
		default:
			return nil, nil, fmt.Sprintf("spec.addresses[%d]: address type %q is not supported: use IPAddress or Hostname", i, typ)
		}
		if a.Value == "" {
			if !slices.Contains(requested, typ) {
				requested = append(requested, typ)
			}
			continue
		}
		out = append(out, gwv1.GatewayStatusAddress{Type: &typ, Value: a.Value})
	}
	return out, requested, ""
}

// addressType is an address's type, IPAddress when it has none (the
// API's default).
func addressType(t *gwv1.AddressType) gwv1.AddressType {
	if t == nil {
		return gwv1.IPAddressType
	}
	return *t
}
