package xds_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// Each replica reports its build; the server keeps it per replica, bounded,
// so that the hub can tell which versions a Gateway runs during a rollout.
// A proxy that names none is the binary's own build.
func TestReplicasReportTheirVersion(t *testing.T) {
	hub := startHub(t)
	a := &applied{}
	long := strings.Repeat("v", 100) + ", and more"
	for _, v := range []string{"v0.2.0", long, ""} {
		c := &xds.Client{Address: hub.addr, CAFile: hub.caFile, NodeID: tableName, Tables: []string{tableName}, Apply: a.apply, Version: v}
		go c.Run(t.Context())
	}
	hub.set(t, &rt.RouteTable{Name: tableName, Gateway: "infra/shared"})
	want := []string{version.Get().Short(), "v0.2.0", strings.Repeat("v", version.MaxReported)}
	slices.Sort(want)
	var got []string
	waitFor(t, 5*time.Second, "three replicas with their versions", func() bool {
		got = got[:0]
		for _, r := range hub.srv.Status(tableName).Replicas {
			got = append(got, r.Version)
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}
