package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// A handler is what probes and lifecycle hooks do: an HTTP GET, a TCP
// connection or a command in the container. Each returns nil on success
// and an error saying what failed.

// handler is one probe's or hook's action, resolved against its container.
type handler struct {
	httpGet *corev1.HTTPGetAction
	tcp     *corev1.TCPSocketAction
	exec    *corev1.ExecAction
	sleep   *corev1.SleepAction
	ports   map[string]int32 // the container's named ports
}

// newHandler checks that the fake kubelet can carry out h.
func newHandler(h corev1.ProbeHandler, c corev1.Container) (handler, error) {
	out := handler{httpGet: h.HTTPGet, tcp: h.TCPSocket, exec: h.Exec, ports: namedPorts(c)}
	if h.GRPC != nil {
		return out, fmt.Errorf("gRPC probes are not supported by the fake kubelet")
	}
	return out, out.checkPorts()
}

// newHook is newHandler for a lifecycle hook, which may also sleep.
func newHook(h corev1.LifecycleHandler, c corev1.Container) (handler, error) {
	out := handler{httpGet: h.HTTPGet, exec: h.Exec, sleep: h.Sleep, ports: namedPorts(c)}
	if h.TCPSocket != nil {
		return out, fmt.Errorf("tcpSocket lifecycle hooks are deprecated and not supported by the fake kubelet")
	}
	return out, out.checkPorts()
}

func namedPorts(c corev1.Container) map[string]int32 {
	ports := map[string]int32{}
	for _, p := range c.Ports {
		if p.Name != "" {
			ports[p.Name] = p.ContainerPort
		}
	}
	return ports
}

func (h handler) checkPorts() error {
	var port *intstr.IntOrString
	switch {
	case h.httpGet != nil:
		port = &h.httpGet.Port
	case h.tcp != nil:
		port = &h.tcp.Port
	default:
		return nil
	}
	_, err := h.port(*port)
	return err
}

func (h handler) port(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	if n, ok := h.ports[p.StrVal]; ok {
		return int(n), nil
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q is not a named port of the container", p.StrVal)
}

// target is where a container runs: its address and its main process (for
// commands in its namespaces).
type target struct {
	ip  netip.Addr
	pid int
	k   *Kubelet
}

// run carries out the action within ctx.
func (h handler) run(ctx context.Context, t target) error {
	switch {
	case h.httpGet != nil:
		return h.get(ctx, t)
	case h.tcp != nil:
		return h.dial(ctx, t)
	case h.exec != nil:
		return h.command(ctx, t)
	case h.sleep != nil:
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(h.sleep.Seconds) * time.Second):
			return nil
		}
	}
	return fmt.Errorf("no action")
}

// probeClient does not follow redirects: a 3xx is a success, as for the
// kubelet's probes, whatever it points at.
var probeClient = &http.Client{
	Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (h handler) get(ctx context.Context, t target) error {
	g := h.httpGet
	port, err := h.port(g.Port)
	if err != nil {
		return err
	}
	host := g.Host
	if host == "" {
		host = t.ip.String()
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	for _, hd := range g.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

func (h handler) dial(ctx context.Context, t target) error {
	port, err := h.port(h.tcp.Port)
	if err != nil {
		return err
	}
	host := h.tcp.Host
	if host == "" {
		host = t.ip.String()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return c.Close()
}

// command runs the action's command in the container's mount, UTS and
// network namespaces, where its files and addresses are.
func (h handler) command(ctx context.Context, t target) error {
	if len(h.exec.Command) == 0 {
		return fmt.Errorf("exec without a command")
	}
	args := append([]string{"--target", strconv.Itoa(t.pid), "--mount", "--uts", "--net", "--"}, h.exec.Command...)
	cmd := exec.CommandContext(ctx, t.k.tools.nsenter, args...)
	cmd.Env = []string{"PATH=" + defaultPath}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("command %q: %v: %s", h.exec.Command, err, strings.TrimSpace(string(out)))
	}
	return nil
}
