package kubelet

import (
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

func TestPickEndpoints(t *testing.T) {
	endpoint := func(ip string, ready, serving, terminating *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
	}
	yes, no := ptr.To(true), ptr.To(false)
	slice := func(port string, endpoints ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4, Endpoints: endpoints,
			Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](8080)}}}
		if port != "" {
			s.Ports[0].Name = ptr.To(port)
		}
		return s
	}
	for _, c := range []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		port   string
		want   []string
	}{
		{"ready, and unset counts as ready", []*discoveryv1.EndpointSlice{slice("", endpoint("10.0.1.1", yes, yes, no), endpoint("10.0.1.2", nil, nil, nil), endpoint("10.0.1.3", no, no, no))},
			"", []string{"10.0.1.1:8080", "10.0.1.2:8080"}},
		{"ready before serving and terminating", []*discoveryv1.EndpointSlice{slice("", endpoint("10.0.1.1", no, yes, yes), endpoint("10.0.1.2", yes, yes, no))},
			"", []string{"10.0.1.2:8080"}},
		{"serving and terminating when none is ready", []*discoveryv1.EndpointSlice{slice("", endpoint("10.0.1.1", no, yes, yes), endpoint("10.0.1.2", no, no, yes))},
			"", []string{"10.0.1.1:8080"}},
		{"the Service port's name picks the slice port", []*discoveryv1.EndpointSlice{slice("xds", endpoint("10.0.1.1", yes, yes, no)), slice("metrics", endpoint("10.0.1.2", yes, yes, no))},
			"xds", []string{"10.0.1.1:8080"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := pickEndpoints(c.slices, c.port); !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}
