package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// gatewayIP is the link-local next hop of every Pod: each host-side veth
// carries it, so a Pod's default route leads back into the test network.
const gatewayIP = "169.254.1.1"

// checkPrivateNetwork refuses to run in the network namespace of PID 1:
// the kubelet adds addresses and routes and turns on forwarding, which must
// stay inside the test's private namespace.
func checkPrivateNetwork() error {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("kubelet: reading the network namespace: %w", err)
	}
	init, err := os.Readlink("/proc/1/ns/net")
	if err != nil {
		// PID 1 is not visible: we are not in the machine's namespace.
		return nil
	}
	if self == init {
		return errors.New("kubelet: refusing to change the machine's network namespace; run inside env.EnterNetwork")
	}
	return nil
}

// prepareHostNetwork makes NodeIP local and lets Pods reach each other
// through this namespace. Both settings belong to the private namespace.
func (k *Kubelet) prepareHostNetwork() error {
	out, err := exec.Command(k.tools.ip, "-4", "route", "get", k.nodeIP.String()).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "local ") {
		if err := k.runIP(nil, "addr", "add", k.nodeIP.String()+"/32", "dev", "lo"); err != nil {
			return fmt.Errorf("kubelet: making NodeIP local: %w", err)
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("kubelet: enabling forwarding between pods: %w", err)
	}
	return nil
}

// runIP runs one ip command, on the host side or, with pid, inside the
// network namespace of that process.
func (k *Kubelet) runIP(stdin []byte, args ...string) error {
	return k.runIPIn(0, stdin, args...)
}

func (k *Kubelet) runIPIn(pid int, stdin []byte, args ...string) error {
	var cmd *exec.Cmd
	if pid == 0 {
		cmd = exec.Command(k.tools.ip, args...)
	} else {
		cmd = exec.Command(k.tools.nsenter, append([]string{netnsFlag(pid), "--", k.tools.ip}, args...)...)
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func netnsFlag(pid int) string { return "--net=/proc/" + strconv.Itoa(pid) + "/ns/net" }

// ipPool hands out single IPv4 addresses from a prefix, round robin so
// that a freed address is not reused at once.
type ipPool struct {
	mu     sync.Mutex
	prefix netip.Prefix
	next   netip.Addr
	used   map[netip.Addr]bool
}

func newIPPool(cidr string) (*ipPool, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return nil, fmt.Errorf("kubelet: PodCIDR %q is not an IPv4 prefix", cidr)
	}
	p = p.Masked()
	if p.Bits() > 30 {
		return nil, fmt.Errorf("kubelet: PodCIDR %s is too small", p)
	}
	return &ipPool{prefix: p, next: p.Addr(), used: map[netip.Addr]bool{}}, nil
}

func (p *ipPool) usable(a netip.Addr) bool {
	if !a.IsValid() || !p.prefix.Contains(a) {
		return false
	}
	last := a.As4()[3]
	return last != 0 && last != 255
}

// allocate returns preferred when it is a free address of the pool (a Pod
// keeps its address across kubelet restarts), else the next free one.
func (p *ipPool) allocate(preferred netip.Addr) (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.usable(preferred) && !p.used[preferred] {
		p.used[preferred] = true
		return preferred, nil
	}
	size := 1 << (32 - p.prefix.Bits())
	for range size {
		a := p.next
		p.next = a.Next()
		if !p.prefix.Contains(p.next) {
			p.next = p.prefix.Addr()
		}
		if p.usable(a) && !p.used[a] {
			p.used[a] = true
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address left in %s", p.prefix)
}

func (p *ipPool) release(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, a)
}

// sandbox is a Pod's network namespace: a holder process that sleeps in a
// namespace of its own (the Pod's "pause" container) and a veth pair whose
// inner end is the Pod's eth0.
type sandbox struct {
	ip       netip.Addr
	hostVeth string
	holder   *exec.Cmd
	done     chan struct{}
}

// pid is the holder's process, whose network namespace the containers join.
func (s *sandbox) pid() int { return s.holder.Process.Pid }

// vethName derives the host-side interface name from the Pod address, so
// that it is unique while the address is in use and fits in 15 characters.
func vethName(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("kl%02x%02x%02x%02x", b[0], b[1], b[2], b[3])
}

// createSandbox starts the holder and wires its namespace to this one:
// the Pod has ip/32 on eth0 and a default route via gatewayIP; this side
// routes ip/32 to the veth, with NodeIP as the source address, so that a
// Pod sees connections from the node come from NodeIP.
func (k *Kubelet) createSandbox(ip netip.Addr) (*sandbox, error) {
	holder := exec.Command(k.tools.sleep, "infinity")
	holder.SysProcAttr = &syscall.SysProcAttr{
		// Created in a new network namespace by clone itself: no window
		// in which the process is still in ours.
		Cloneflags: syscall.CLONE_NEWNET,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := startProcess(holder); err != nil {
		return nil, fmt.Errorf("starting the network namespace holder: %w", err)
	}
	s := &sandbox{ip: ip, hostVeth: vethName(ip), holder: holder, done: make(chan struct{})}
	go func() {
		_ = holder.Wait()
		close(s.done)
	}()
	if err := k.wireSandbox(s); err != nil {
		return nil, errors.Join(err, k.destroySandbox(s))
	}
	return s, nil
}

func (k *Kubelet) wireSandbox(s *sandbox) error {
	// A veth of that name can only be a leftover of an earlier run.
	_ = k.runIP(nil, "link", "del", s.hostVeth)
	if err := k.runIP(nil, "link", "add", s.hostVeth, "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(s.pid())); err != nil {
		return err
	}
	inside := strings.Join([]string{
		"link set lo up",
		"link set eth0 up",
		"addr add " + s.ip.String() + "/32 dev eth0",
		"route add " + gatewayIP + " dev eth0 scope link",
		"route add default via " + gatewayIP + " dev eth0",
	}, "\n") + "\n"
	if err := k.runIPIn(s.pid(), []byte(inside), "-batch", "-"); err != nil {
		return fmt.Errorf("configuring the pod network namespace: %w", err)
	}
	outside := strings.Join([]string{
		"link set " + s.hostVeth + " up",
		"addr add " + gatewayIP + "/32 dev " + s.hostVeth + " scope link",
		"route add " + s.ip.String() + "/32 dev " + s.hostVeth + " src " + k.nodeIP.String(),
	}, "\n") + "\n"
	if err := k.runIP([]byte(outside), "-batch", "-"); err != nil {
		return fmt.Errorf("configuring the host side of the pod network: %w", err)
	}
	return nil
}

// destroySandbox removes the veth pair and ends the holder, which takes
// the namespace with it once no container is left in it.
func (k *Kubelet) destroySandbox(s *sandbox) error {
	var errs []error
	if err := k.runIP(nil, "link", "del", s.hostVeth); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		errs = append(errs, fmt.Errorf("network namespace holder %d did not exit", s.pid()))
	}
	return errors.Join(errs...)
}
