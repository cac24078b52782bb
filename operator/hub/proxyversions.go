package hub

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// proxyVersions counts a Gateway's connected replicas by the version each
// reports to the push server.
func proxyVersions(node xds.NodeStatus) version.Replicas {
	if len(node.Replicas) == 0 {
		return nil
	}
	out := version.Replicas{}
	for _, r := range node.Replicas {
		out[r.Version]++
	}
	return out
}

// withProxyVersions ends the Gateway's Programmed message with the versions
// its connected proxies run, which `gatehousectl explain` shows and which
// tells an operator where a rollout stands. While the hub keeps the stored
// conditions after a restart (f.keep) they stay as stored.
func withProxyVersions(conds []metav1.Condition, node xds.NodeStatus, f served) []metav1.Condition {
	if f.keep {
		return conds
	}
	r := proxyVersions(node)
	for i := range conds {
		if conds[i].Type == conditionProgramed {
			conds[i].Message = r.InMessage(conds[i].Message)
		}
	}
	return conds
}
