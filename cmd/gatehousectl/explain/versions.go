package explain

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// proxyVersions names the versions the Gateway's connected proxies run, as
// the hub writes them at the end of its Programmed message, so that a
// version skew during a rollout is in plain sight; "" when the hub wrote
// none.
func proxyVersions(programmed *metav1.Condition) string {
	r := version.FromMessage(programmed.Message)
	if len(r) == 0 {
		return ""
	}
	return "; proxies run " + r.String()
}
