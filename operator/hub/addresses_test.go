package hub

import (
	"slices"
	"testing"

	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// TestAssignedAddresses: an address of spec.addresses with a type and no
// value gets the assigned addresses of that type (the class's, the
// Service's, or what the proxies advertise), and says which type found
// none; a value is reported as given; no spec.addresses takes them all.
func TestAssignedAddresses(t *testing.T) {
	ip := func(v string) gwv1.GatewayStatusAddress { return translate.StatusAddress(v) }
	ask := func(typ gwv1.AddressType, value string) gwv1.GatewaySpecAddress {
		return gwv1.GatewaySpecAddress{Type: ptr.To(typ), Value: value}
	}
	managed, external := translate.ClassParameters{Mode: translate.ModeManaged}, translate.ClassParameters{Mode: translate.ModeExternal}
	withClass := translate.ClassParameters{Mode: translate.ModeExternal, Addresses: []gwv1.GatewayStatusAddress{ip("127.0.0.2"), ip("proxy.example.test")}}
	cases := []struct {
		name       string
		spec       []gwv1.GatewaySpecAddress
		params     translate.ClassParameters
		service    []gwv1.GatewayStatusAddress
		advertised []string
		want       []string
		unassigned []string
	}{
		{"managed: an empty IPAddress gets the Service's", []gwv1.GatewaySpecAddress{ask(gwv1.IPAddressType, "")}, managed,
			[]gwv1.GatewayStatusAddress{ip("10.96.0.10")}, nil, []string{"10.96.0.10"}, nil},
		{"managed: no Hostname to assign", []gwv1.GatewaySpecAddress{ask(gwv1.HostnameAddressType, "")}, managed,
			[]gwv1.GatewayStatusAddress{ip("10.96.0.10")}, nil, nil, []string{"Hostname"}},
		{"external: what the proxies advertise", []gwv1.GatewaySpecAddress{ask(gwv1.IPAddressType, "")}, external,
			nil, []string{"10.244.254.3"}, []string{"10.244.254.3"}, nil},
		{"external: the class's of that type", []gwv1.GatewaySpecAddress{ask(gwv1.IPAddressType, "")}, withClass,
			nil, []string{"10.244.254.3"}, []string{"127.0.0.2"}, nil},
		{"a value is reported as given, and nothing assigned beside it", []gwv1.GatewaySpecAddress{ask(gwv1.IPAddressType, "10.0.0.7")}, external,
			nil, []string{"10.0.0.8"}, []string{"10.0.0.7"}, nil},
		{"a value and an empty Hostname", []gwv1.GatewaySpecAddress{ask(gwv1.IPAddressType, "10.0.0.7"), ask(gwv1.HostnameAddressType, "")}, withClass,
			nil, nil, []string{"10.0.0.7", "proxy.example.test"}, nil},
		{"no spec.addresses: every assigned address", nil, external,
			nil, []string{"10.244.254.3", "10.244.254.4"}, []string{"10.244.254.3", "10.244.254.4"}, nil},
		{"nothing known yet", []gwv1.GatewaySpecAddress{ask(gwv1.IPAddressType, "")}, external,
			nil, nil, nil, []string{"IPAddress"}},
		{"an invalid spec.addresses keeps translate's answer", []gwv1.GatewaySpecAddress{ask("example.com/custom", "")}, external,
			nil, []string{"10.244.254.3"}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gw := &gwv1.Gateway{Spec: gwv1.GatewaySpec{Addresses: c.spec}}
			ours := &gwv1.GatewayStatus{}
			unassigned := assignAddresses(ours, gw, c.params, c.service, c.advertised)
			var got []string
			for _, a := range ours.Addresses {
				got = append(got, a.Value)
			}
			if !slices.Equal(got, c.want) || !slices.Equal(unassigned, c.unassigned) {
				t.Errorf("addresses %v, unassigned %v; want %v, %v", got, unassigned, c.want, c.unassigned)
			}
		})
	}
}

// TestManagedAddresses: a Gateway whose proxies the hub runs may use only
// the addresses its proxies' Service was given; while the load balancer
// gives none, none is usable.
func TestManagedAddresses(t *testing.T) {
	ip := func(v string) gwv1.GatewayStatusAddress { return translate.StatusAddress(v) }
	for _, c := range []struct {
		name             string
		addrs, service   []gwv1.GatewayStatusAddress
		usable, unusable []string
	}{
		{"given", []gwv1.GatewayStatusAddress{ip("192.0.2.10")}, []gwv1.GatewayStatusAddress{ip("192.0.2.10")}, []string{"192.0.2.10"}, nil},
		{"another given", []gwv1.GatewayStatusAddress{ip("192.0.2.9"), ip("192.0.2.10")}, []gwv1.GatewayStatusAddress{ip("192.0.2.10")},
			[]string{"192.0.2.10"}, []string{"192.0.2.9"}},
		{"none given yet", []gwv1.GatewayStatusAddress{ip("192.0.2.10")}, nil, nil, []string{"192.0.2.10"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			usable, unusable := managedAddresses(c.addrs, c.service)
			if got := addressValues(usable); !slices.Equal(got, c.usable) || !slices.Equal(unusable, c.unusable) {
				t.Errorf("usable %v, unusable %v; want %v, %v", got, unusable, c.usable, c.unusable)
			}
		})
	}
}
