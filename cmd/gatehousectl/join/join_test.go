package join_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehousectl/join"
)

func TestValidateRefuses(t *testing.T) {
	ok := join.Options{Cluster: "member-1", HubNamespace: "gatehouse-system", MemberNamespace: "gatehouse-system", TokenDuration: time.Hour}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, c := range []struct {
		name   string
		change func(*join.Options)
		want   string
	}{
		{"a plain-http server", func(o *join.Options) { o.Server = "http://10.0.0.1:6443" }, "https only"},
		{"a server without a scheme", func(o *join.Options) { o.Server = "10.0.0.1:6443" }, "https only"},
		{"the name of the hub's own key pairs", func(o *join.Options) { o.Cluster = "hub" }, "reserved"},
		{"a name whose certificate namespace is the hub's", func(o *join.Options) { o.Cluster = "system" }, "hub's own namespace"},
		{"a name with a dot", func(o *join.Options) { o.Cluster = "a.b" }, `e.g. "a-b"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.change(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate() = %v, want an error saying %q", err, c.want)
			}
		})
	}
}
