package lifecycle_test

import (
	"context"
	"fmt"
	"net"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// scenario is one member with the shared Gateway, one tenant's route and a
// proxy serving it, which reaches the hub through the push Service.
type scenario struct {
	gw           *env.SharedGateway
	tenant, host string
	answer       string
}

func (b *bed) startScenario(ctx context.Context) *scenario {
	t := b.t
	member := b.fleet.Members[0]
	s := &scenario{tenant: "shop", host: "shop.apps.example.test", answer: "shop: served through every hub change"}
	gw, err := env.SetUpSharedGateway(ctx, scenarioIndex, member, []env.Tenant{{Namespace: s.tenant, Hostname: s.host, Answer: s.answer}}, env.ProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.gw = gw
	t.Cleanup(func() { _ = gw.Close() })

	svc, err := b.hub.CoreV1().Services(hubNamespace).Get(ctx, release+"-push", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	token, err := env.ProxyToken(ctx, member, env.GatewayNamespace, env.GatewayName, dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := env.PushCABundle(ctx, b.fleet.Hub, dir)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(gw.Address)
	// As a member's proxy reaches the hub: through the push Service, with
	// the name its certificate carries.
	gw.Proxy, err = env.StartProcess("proxy", b.bins["gatehouse-proxy"], []string{
		"--xds-address", net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(svc.Spec.Ports[0].Port)),
		"--xds-server-name", fmt.Sprintf("%s-push.%s.svc", release, hubNamespace),
		"--cluster", member.Name, "--gateway", env.GatewayNamespace + "/" + env.GatewayName,
		"--bind-address", host, "--admin-address", "127.0.0.1:0", "--cache-dir", dir, "--drain-timeout", "2s",
		"--token-file", token, "--xds-ca-file", ca,
	}, b.logFile("proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	b.eventually(ctx, 2*time.Minute, "the route served and Programmed", func() (bool, string) {
		got, err := gw.Get(s.host)
		if err != nil || got != s.answer {
			return false, fmt.Sprintf("GET %s: %q %v", s.host, got, err)
		}
		var route gwv1.HTTPRoute
		if err := gw.Client.Get(ctx, client.ObjectKey{Namespace: s.tenant, Name: "web"}, &route); err != nil {
			return false, err.Error()
		}
		if c := routeProgrammed(&route); c == nil || c.Status != "True" {
			return false, "route " + describe(c)
		}
		return true, ""
	})
	return s
}
