package translate

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// DefaultAdminPort is the port a proxy's admin server (/metrics, /healthz,
// /readyz) binds unless the class parameters name another ("adminPort").
// The hub starts the proxies it provisions with it, and no listener of the
// class's Gateways or ListenerSets may use it: a listener there could not be
// opened, and a proxy that cannot open a listener refuses the whole table.
const DefaultAdminPort int32 = 9901

// ReasonPortReserved is the reason of Accepted=False on a listener whose port
// the Gateway's proxies bind for themselves. It is the Gateway API's
// PortUnavailable, which the spec gives for a port "not supported by the
// implementation".
const ReasonPortReserved = gwv1.ListenerReasonPortUnavailable

// AdminAddress is the --admin-address of a proxy of the class: all
// addresses, at the class's admin port.
func (p ClassParameters) AdminAddress() string {
	return fmt.Sprintf("0.0.0.0:%d", p.ProxyAdminPort())
}

// ProxyAdminPort is the port of the class's proxies' admin server.
func (p ClassParameters) ProxyAdminPort() int32 { return cmp.Or(p.AdminPort, DefaultAdminPort) }

// reservedPort says why a listener may not use port on a Gateway of the
// class, or "" when it may. Every port the proxy binds for itself is here.
func (p ClassParameters) reservedPort(port int32) string {
	if port == p.ProxyAdminPort() {
		return fmt.Sprintf("port %d is reserved: the Gateway's proxies serve their admin endpoints (/metrics, /healthz, /readyz) on it (adminPort of the GatewayClass parameters); use another port for this listener", port)
	}
	return ""
}

// parseAdminPort reads the "adminPort" key of class parameters.
func parseAdminPort(value string) (int32, string) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, ""
	}
	n, err := strconv.ParseInt(value, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Sprintf("adminPort %q is not a port number (1-65535): set it to the port of the proxies' --admin-address, or remove it for %d", value, DefaultAdminPort)
	}
	return int32(n), ""
}
