package explain

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons the hub writes on Programmed (operator/hub): the proxies have not
// acknowledged the table yet, or one rejected it. The CLI does not link the
// hub for two strings; a test keeps them equal.
const (
	reasonPending       = "Pending"
	reasonProxyRejected = "Invalid"
	// reasonSuperseded: another route takes what a TLSRoute, TCPRoute or
	// UDPRoute asks for.
	reasonSuperseded = "Superseded"
	// rejectedPrefix begins the message of a rejection.
	rejectedPrefix = "a proxy rejected the route table: "
)

var (
	connected = regexp.MustCompile(`\((\d+) connected\)`)
	boundPort = regexp.MustCompile(`listener port (\d+)`)
)

// programmedReason says whether the parent's proxies serve the route, and
// when they do not, why and who can change that.
func (in *inspection) programmedReason(k parentKey, info parentInfo, attached bool, c *metav1.Condition) Reason {
	gw := k.String()
	if info.gateway != nil {
		gw = fmt.Sprintf("Gateway %s/%s", info.gateway.Namespace, info.gateway.Name)
	}
	switch {
	case !attached:
		return problem(checkProgrammed, "", "not served: proxies serve a route only where it is attached")
	case c == nil:
		return problem(checkProgrammed, "wait a moment and run explain again; if it stays so, check that the hub is running",
			"the hub has not reported Programmed yet")
	case c.Status == metav1.ConditionTrue:
		return ok(checkProgrammed, "served by %s (Programmed=True: %s)", proxies(c.Message), c.Message)
	case c.Reason == reasonPending:
		fix := "proxies acknowledge a new table within a second or so: run explain again; if it stays Pending, look at the proxies' logs"
		if strings.Contains(c.Message, "no proxy") {
			fix = fmt.Sprintf("the owner of %s must start its proxies, or check that they reach the hub and present the Gateway's token", gw)
		}
		return problem(checkProgrammed, fix, "waiting for proxies: Programmed=False (Pending): %s", c.Message)
	case c.Reason == reasonSuperseded:
		return problem(checkProgrammed, "attach the route to a listener no other route holds, or (if it is yours) change or delete the route that holds it",
			"accepted, and served by no proxy: Programmed=False (Superseded): %s", c.Message)
	case c.Reason == reasonProxyRejected:
		msg := c.Message
		if !strings.HasPrefix(msg, rejectedPrefix) {
			msg = rejectedPrefix + msg
		}
		after := "the proxies keep serving the last table they accepted, without this change"
		if strings.Contains(c.Message, "which serve its other listeners") {
			after = "the proxies serve the Gateway's other listeners, and this one once it can be served"
		}
		return problem(checkProgrammed, in.rejectionFix(gw, info, c.Message),
			"%s (Programmed=False, reason Invalid); %s", msg, after)
	}
	return problem(checkProgrammed, fmt.Sprintf("the owner of %s must fix what the message names", gw),
		"Programmed=False (%s): %s", c.Reason, c.Message)
}

// proxies turns the hub's "(N connected)" into "N proxies".
func proxies(message string) string {
	m := connected.FindStringSubmatch(message)
	if m == nil {
		return "the Gateway's proxies"
	}
	if m[1] == "1" {
		return "1 proxy"
	}
	return m[1] + " proxies"
}

// rejectionFix says what to look at when a proxy rejected the table: a
// listener port it cannot bind is the Gateway owner's to fix; otherwise
// the route's own filters are the first suspects.
func (in *inspection) rejectionFix(gw string, info parentInfo, message string) string {
	if m := boundPort.FindStringSubmatch(message); m != nil {
		port, _ := strconv.Atoi(m[1])
		var names []string
		for _, l := range info.listeners {
			if int(l.Port) == port {
				names = append(names, fmt.Sprintf("%q", l.Name))
			}
		}
		where := fmt.Sprintf("port %d", port)
		if len(names) > 0 {
			where = fmt.Sprintf("listener %s (port %d)", strings.Join(names, ", "), port)
		}
		return fmt.Sprintf("the proxy cannot open %s where it runs: something else listens on that port there, or it changes between HTTP and HTTPS. "+
			"The owner of %s must free the port on the proxy's host or move the listener to a free port; nothing in this route can fix it", where, gw)
	}
	fix := fmt.Sprintf("look at the proxy's log for the full error; if it names this route, fix it and apply again, otherwise the owner of %s must fix what it names", gw)
	if len(in.r.filters) > 0 {
		fix += "; this route's filters are the usual suspects: " + strings.Join(in.r.filters, ", ")
	}
	return fix
}
