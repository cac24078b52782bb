package routetable

import (
	"slices"
)

// KeyPairNames lists, sorted and each once, the key pairs the tables name:
// their listeners' certificates and their backends' client certificates.
// These are what a proxy of the tables receives beside them.
func KeyPairNames(tables ...*RouteTable) []string {
	var out []string
	for _, t := range tables {
		for _, l := range t.GetListeners() {
			out = append(out, l.GetTls().GetCertificates()...)
		}
		for _, b := range t.GetBackends() {
			if n := b.GetTls().GetClientCertificate(); n != "" {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
