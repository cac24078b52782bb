package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gatehouse-dev/gatehouse/test/env"
)

// testLoadBalancer: LoadBalancer Services get addresses of the pool in
// order, never one a deleted Service had, the static address only when
// they ask for it and nothing for an address outside the pool; the
// service proxy serves TCP and UDP on both the cluster IP and the load
// balancer's address, to the Pod behind the Service.
func (f *fixture) testLoadBalancer(t *testing.T) {
	ctx := context.Background()
	f.startControllerManager(t)
	ns := f.namespace(t, "kubelet-lb")
	httpPod := echoPod(ns, "web")
	udpPod := echoPod(ns, "dns")
	udpPod.Spec.Containers[0].Env = append(udpPod.Spec.Containers[0].Env, corev1.EnvVar{Name: "UDP_ECHO_SERVER", Value: "1"}, corev1.EnvVar{Name: "UDP_PORT", Value: "5353"})
	for _, p := range []*corev1.Pod{httpPod, udpPod} {
		if _, err := f.client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.waitReady(t, ns, p.Name)
	}

	first, static := netip.MustParseAddr("10.244.254.100"), netip.MustParseAddr("10.244.255.250")
	lb, err := StartLoadBalancer(ctx, LoadBalancerOptions{Config: f.fleet.Hub.Config, First: first, Last: netip.MustParseAddr("10.244.254.102"),
		Static: []netip.Addr{static}, Log: newTestLog(t, filepath.Join(f.dir, "load-balancer.log"))})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Stop()
	proxy, err := StartServiceProxy(ctx, f.fleet.Hub.Config, newTestLog(t, filepath.Join(f.dir, "service-proxy-lb.log")))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()

	service := func(name, app, loadBalancerIP string, port corev1.ServicePort) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: loadBalancerIP, Selector: map[string]string{"app": app}, Ports: []corev1.ServicePort{port}}}
		if _, err := f.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tcp := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(3000), Protocol: corev1.ProtocolTCP}
	udp := corev1.ServicePort{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(5353), Protocol: corev1.ProtocolUDP}
	service("gone", "web", "", tcp)
	f.waitIngress(t, ns, "gone", first.String())
	if err := f.client.CoreV1().Services(ns).Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	service("web", "web", "", tcp)
	service("elsewhere", "web", "10.244.253.250", tcp)
	service("dns", "dns", static.String(), udp)
	web := f.waitIngress(t, ns, "web", first.Next().String())
	// The load balancer reconciles every Service it knows at once, and
	// knew "elsewhere" before "dns".
	dns := f.waitIngress(t, ns, "dns", static.String())
	if s, err := f.client.CoreV1().Services(ns).Get(ctx, "elsewhere", metav1.GetOptions{}); err != nil || len(s.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("a Service asking for an address outside the pool got %v (%v)", s.Status.LoadBalancer.Ingress, err)
	}

	for _, ip := range []string{web.Spec.ClusterIP, web.Status.LoadBalancer.Ingress[0].IP} {
		var echoed struct{ Pod string }
		if err := json.Unmarshal(httpGet(t, "http://"+net.JoinHostPort(ip, "80")+"/", nil), &echoed); err != nil || echoed.Pod != "web" {
			t.Errorf("TCP through %s reached %q (%v), want Pod web", ip, echoed.Pod, err)
		}
	}
	for _, ip := range []string{dns.Spec.ClusterIP, dns.Status.LoadBalancer.Ingress[0].IP} {
		if got := udpExchange(t, net.JoinHostPort(ip, "53"), "ping "+ip); got.Pod != "dns" || got.Request != "ping "+ip {
			t.Errorf("UDP through %s: answer %+v, want Pod dns echoing the datagram", ip, got)
		}
	}
}

// waitIngress waits until the Service has exactly the load balancer
// address want.
func (f *fixture) waitIngress(t *testing.T, ns, name, want string) *corev1.Service {
	t.Helper()
	var svc *corev1.Service
	eventually(t, 10*time.Second, func() (bool, string) {
		s, err := f.client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		svc = s
		in := s.Status.LoadBalancer.Ingress
		return len(in) == 1 && in[0].IP == want, fmt.Sprintf("Service %s ingress %+v, want %s", name, in, want)
	})
	return svc
}

// udpExchange sends one datagram and reads the echo server's answer,
// retrying while the service proxy may not listen yet.
func udpExchange(t *testing.T, addr, payload string) (answer struct{ Request, Pod string }) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		if _, err := c.Write([]byte(payload)); err != nil {
			return false, err.Error()
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			return false, fmt.Sprintf("UDP %s: %v", addr, err)
		}
		return json.Unmarshal(buf[:n], &answer) == nil, string(buf[:n])
	})
	return answer
}

// startControllerManager runs kube-controller-manager (Deployments,
// EndpointSlices) until the test ends.
func (f *fixture) startControllerManager(t *testing.T) {
	bin := os.Getenv("GATEHOUSE_BIN_DIR")
	if bin == "" {
		root, err := env.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(root, "bin")
	}
	kcm, err := StartControllerManager(context.Background(), bin, f.fleet.Hub.KubeconfigPath, newTestLog(t, filepath.Join(f.dir, "kcm-"+filepath.Base(t.Name())+".log")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kcm.Stop(10 * time.Second); err != nil {
			t.Error(err)
		}
	})
}
