package conformance

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/gatehouse-dev/gatehouse/test/conformance/kubelet"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// The GatewayClass is in managed mode, as it is by default: the hub creates
// each Gateway's proxy Deployment, Service and ServiceAccount, the kubelet
// runs the proxies as Pods (their image is gatehouse-proxy, played by
// bin/gatehouse-proxy), and clients reach them as they would on a
// bare-metal cluster: the Gateway's Service is of type LoadBalancer, a
// load balancer controller gives it an address, which the hub reports in
// the Gateway's status, and kube-proxy's stand-in forwards that address to
// the proxy Pods. The Pods reach the hub's push server on an address of
// the test network, and present a token of their projected ServiceAccount
// token volume, as in any cluster.
const (
	// proxyImage is what the hub puts in the proxies' Pods: the image the
	// chart would name, which the kubelet maps to bin/gatehouse-proxy by
	// its base name.
	proxyImage = "ghcr.io/gatehouse-dev/gatehouse-proxy:conformance"
	// hubIP is where the hub's push server listens, local to the test
	// network, where the Pods' default route leads.
	hubIP   = "10.244.255.3"
	xdsPort = 18000
	// serviceRange is the API server's Service range: kube-proxy's
	// stand-in listens on cluster IPs there.
	serviceRange = "10.0.0.0/24"
)

// classParameters are the GatewayClass's parameters: managed mode, one
// proxy per Gateway (the suite makes dozens of Gateways on a 2-core
// machine; a second replica would test nothing the suite checks).
var classParameters = map[string]string{"mode": "managed", "replicas": "1"}

// hubProvisioningArgs are the hub's flags for managed mode: the proxies'
// image and where Pods reach the push server (the certificate names that
// address).
func hubProvisioningArgs() []string {
	xds := net.JoinHostPort(hubIP, strconv.Itoa(xdsPort))
	return []string{"--xds-address", xds, "--proxy-xds-address", xds, "--proxy-image", proxyImage}
}

// startServiceNetwork starts what makes the Gateways' Services reachable:
// a load balancer controller that gives each LoadBalancer Service an
// address of 10.244.254.0/23 (the usable static address only to a Service
// that asks for it, so the unusable one is never given), and kube-proxy's
// stand-in, which serves those addresses and the cluster IPs.
func startServiceNetwork(ctx context.Context, t *testing.T, cluster *env.Cluster, logFile func(string) io.Writer) {
	lb, err := kubelet.StartLoadBalancer(ctx, kubelet.LoadBalancerOptions{
		Config: cluster.Config, First: netip.MustParseAddr(firstGatewayIP), Last: netip.MustParseAddr(lastGatewayIP),
		Static: []netip.Addr{netip.MustParseAddr(usableAddress)}, Log: logFile("load-balancer.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lb.Stop)
	sp, err := kubelet.StartServiceProxy(ctx, cluster.Config, logFile("service-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Stop)
}
