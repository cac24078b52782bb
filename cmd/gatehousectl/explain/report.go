package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Report is the explanation of one route in every member cluster that
// holds it. It is what the json format prints.
type Report struct {
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace"`
	Name      string          `json:"name"`
	Clusters  []ClusterReport `json:"clusters"`
}

// ClusterReport explains the route in one member cluster.
type ClusterReport struct {
	Cluster string `json:"cluster"`
	// Error says why the cluster could not be read; nothing else is set.
	Error      string `json:"error,omitempty"`
	Generation int64  `json:"generation,omitempty"`
	// OtherControllers are status entries of controllers other than
	// Gatehouse, which explain does not interpret.
	OtherControllers []string `json:"otherControllers,omitempty"`
	// Warnings say what the explanation could not know.
	Warnings []string       `json:"warnings,omitempty"`
	Parents  []ParentReport `json:"parents,omitempty"`
}

// ParentReport explains one parentRef of the route.
type ParentReport struct {
	Parent   string `json:"parent"`
	Attached bool   `json:"attached"`
	Served   bool   `json:"served"`
	// Listeners are those of the parent that take the route by the
	// Gateway API's rules (kinds, namespaces, hostnames), before tenancy
	// and policies decide.
	Listeners []string `json:"listeners,omitempty"`
	// Verdict is one line: "attached and served", "attached, not yet
	// served" or "not attached", possibly followed by a qualification.
	Verdict string   `json:"verdict"`
	Reasons []Reason `json:"reasons"`
}

// Reason is one check, what it found and, when it found a problem, what to
// do about it.
type Reason struct {
	Check   string `json:"check"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Names of the checks.
const (
	checkStatus          = "status"
	checkParent          = "parent"
	checkGatewayClass    = "gatewayClass"
	checkGateway         = "gateway"
	checkListeners       = "listeners"
	checkListener        = "listener"
	checkKinds           = "allowedRoutes.kinds"
	checkNamespaces      = "allowedRoutes.namespaces"
	checkHostnames       = "hostnames"
	checkTenancy         = "tenancy"
	checkPolicy          = "policy"
	checkBackend         = "backendRef"
	checkReferenceGrant  = "referenceGrant"
	checkAccepted        = "Accepted"
	checkResolvedRefs    = "ResolvedRefs"
	checkPolicyCompliant = "PolicyCompliant"
	checkProgrammed      = "Programmed"
)

// Verdicts.
const (
	verdictServed      = "attached and served"
	verdictNotServed   = "attached, not yet served"
	verdictNotAttached = "not attached"
)

func ok(check, format string, args ...any) Reason {
	return Reason{Check: check, OK: true, Message: fmt.Sprintf(format, args...)}
}

func problem(check, fix, format string, args ...any) Reason {
	return Reason{Check: check, Message: fmt.Sprintf(format, args...), Fix: fix}
}

// firstProblem returns the first failed reason of the first of the given
// checks that failed: checks come in order of preference.
func firstProblem(rs []Reason, checks ...string) *Reason {
	for _, c := range checks {
		for i := range rs {
			if !rs[i].OK && rs[i].Check == c {
				return &rs[i]
			}
		}
	}
	return nil
}

func (r *Report) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s/%s\n", r.Kind, r.Namespace, r.Name)
	for _, c := range r.Clusters {
		b.WriteString("\n")
		if c.Error != "" {
			fmt.Fprintf(&b, "cluster %s: %s\n", c.Cluster, c.Error)
			continue
		}
		fmt.Fprintf(&b, "cluster %s (generation %d)\n", c.Cluster, c.Generation)
		for _, w := range c.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", w)
		}
		if len(c.OtherControllers) > 0 {
			fmt.Fprintf(&b, "  other controllers also report on this route (not explained here): %s\n", strings.Join(c.OtherControllers, "; "))
		}
		if len(c.Parents) == 0 {
			b.WriteString("  the route has no parentRefs: it attaches to nothing; add spec.parentRefs naming a Gateway\n")
		}
		for _, p := range c.Parents {
			fmt.Fprintf(&b, "  parent %s\n", p.Parent)
			for _, rs := range p.Reasons {
				mark := "[ok]"
				if !rs.OK {
					mark = "[no]"
				}
				fmt.Fprintf(&b, "    %s %s: %s\n", mark, rs.Check, rs.Message)
				if rs.Fix != "" {
					fmt.Fprintf(&b, "         fix: %s\n", rs.Fix)
				}
			}
			fmt.Fprintf(&b, "    verdict: %s\n", p.Verdict)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
