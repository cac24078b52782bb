package routetable

import (
	"slices"
	"testing"
)

func TestKeyPairNames(t *testing.T) {
	a := &RouteTable{
		Listeners: []*Listener{
			{Name: "https", Tls: &ListenerTLS{Certificates: []string{"c/infra/b", "c/infra/a"}}},
			{Name: "http"},
		},
		Backends: []*Backend{
			{Name: "secure", Tls: &BackendTLS{Sni: "x", ClientCertificate: "client/c/infra/a"}},
			{Name: "tls-without-client", Tls: &BackendTLS{Sni: "y"}},
			{Name: "plain"},
		},
	}
	b := &RouteTable{Listeners: []*Listener{{Name: "https", Tls: &ListenerTLS{Certificates: []string{"c/infra/a"}}}}}
	want := []string{"c/infra/a", "c/infra/b", "client/c/infra/a"}
	if got := KeyPairNames(a, b); !slices.Equal(got, want) {
		t.Errorf("KeyPairNames = %v, want %v: listener certificates and backend client certificates, each once, sorted", got, want)
	}
	if got := KeyPairNames(&RouteTable{}); len(got) != 0 {
		t.Errorf("a table without TLS names %v", got)
	}
}
