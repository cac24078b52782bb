package proxy

import (
	"crypto/ed25519"
	cryptorand "crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// TestApplyCompilesAsFresh: random sequences of versions (routes, virtual
// hosts and backends added, changed and removed, listeners and key pairs
// changed), decoded as the push client decodes them, applied one after the
// other: each config served is exactly what compiling its version from
// nothing gives, every backend has its pools and the breaker the proxy
// keeps under its name, and the routes not served are those of the
// version.
func TestApplyCompilesAsFresh(t *testing.T) {
	ports := []uint32{diffPort(t), diffPort(t)}
	keys := testKeyPairs(t)
	for seed := range 20 {
		g := &versionGen{matchGen: matchGen{rand.New(rand.NewPCG(uint64(seed), 5))}, ports: ports, keys: keys}
		p := New(Options{BindAddress: "127.0.0.1"})
		var d rt.Decoder
		tables := g.tables()
		for step := range 30 {
			version, keyPairs := decodeAll(t, &d, tables), g.keyPairs()
			fresh, freshErr := compile(nil, version, keyPairs)
			err := p.Apply(fmt.Sprint(step), version, keyPairs)
			if (err == nil) != (freshErr == nil) {
				t.Fatalf("seed %d step %d: applied: %v; compiled from nothing: %v", seed, step, err, freshErr)
			}
			if err == nil {
				where := fmt.Sprintf("seed %d step %d", seed, step)
				checkServed(t, where, p, fresh)
			}
			tables = g.change(tables)
		}
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func checkServed(t *testing.T, where string, p *Proxy, fresh *config) {
	t.Helper()
	got := p.cfg.Load()
	if diff := configDiff(got, fresh); diff != "" {
		t.Fatalf("%s: the config served differs from one compiled from nothing at %s", where, diff)
	}
	for key, b := range got.backends {
		if b.transport == nil || b.upgrade == nil || b.breaker == nil || p.breakers.m[key] != b.breaker {
			t.Fatalf("%s: backend %s has not its pools and breaker", where, key)
		}
	}
	if len(p.breakers.m) != len(got.backends) {
		t.Fatalf("%s: %d breakers for %d backends", where, len(p.breakers.m), len(got.backends))
	}
	want := map[string]map[string]string{}
	for id, why := range fresh.badRoutes {
		if want[id.table] == nil {
			want[id.table] = map[string]string{}
		}
		want[id.table][id.route] = why
	}
	if got := p.RoutesNotServed(); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: routes not served %v, want %v", where, got, want)
	}
}

// decodeAll encodes tables and decodes them with d.
func decodeAll(t *testing.T, d *rt.Decoder, tables []*rt.RouteTable) []*rt.RouteTable {
	t.Helper()
	var out []*rt.RouteTable
	for _, tbl := range tables {
		b, err := proto.Marshal(tbl)
		if err != nil {
			t.Fatal(err)
		}
		dt, err := d.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dt)
	}
	return out
}

// versionGen makes tables and changes them a little at a time.
type versionGen struct {
	matchGen
	ports []uint32
	// keys are key pairs under the names listeners and backends use:
	// two good versions and a bad one.
	keys [][]*rt.KeyPair
	kp   []int
}

var genBackends = []string{"a", "b", "c", "d"}

func (g *versionGen) tables() []*rt.RouteTable {
	out := []*rt.RouteTable{g.table("c/ns/one")}
	if g.r.IntN(3) == 0 {
		out = append(out, g.table("c/ns/two"))
	}
	return out
}

func (g *versionGen) table(name string) *rt.RouteTable {
	t := &rt.RouteTable{Name: name, Gateway: name[2:]}
	for _, b := range genBackends {
		if g.r.IntN(4) > 0 {
			t.Backends = append(t.Backends, g.backend(b))
		}
	}
	for range 1 + g.r.IntN(3) {
		t.Listeners = append(t.Listeners, g.listener())
	}
	return t
}

func (g *versionGen) backend(name string) *rt.Backend {
	b := &rt.Backend{Name: name, Protocol: rt.AppProtocol_HTTP1,
		Endpoints: []*rt.Endpoint{{Address: "127.0.0.1", Port: uint32(9000 + g.r.IntN(3))}}}
	switch g.r.IntN(8) {
	case 0:
		b.Tls = &rt.BackendTLS{Sni: name + ".example.com", ClientCertificate: g.pick("infra/a", "infra/b")}
	case 1:
		b.Protocol = rt.AppProtocol_H2C
	}
	return b
}

func (g *versionGen) listener() *rt.Listener {
	l := &rt.Listener{Name: g.pick("http", "https", "tcp", "other"), Port: g.ports[g.r.IntN(len(g.ports))]}
	switch g.r.IntN(5) {
	case 0:
		l.Protocol = rt.Protocol_HTTPS
		l.Tls = &rt.ListenerTLS{Certificates: []string{g.pick("infra/a", "infra/b")}}
	case 1:
		l.Protocol = rt.Protocol_TCP
		l.StreamRoutes = []*rt.StreamRoute{{Backends: []*rt.WeightedBackend{{Backend: g.pick(genBackends...), Weight: 1}}}}
		return l
	default:
		l.Protocol = rt.Protocol_HTTP
	}
	for range g.r.IntN(4) {
		l.VirtualHosts = append(l.VirtualHosts, g.vhost())
	}
	return l
}

func (g *versionGen) vhost() *rt.VirtualHost {
	vh := &rt.VirtualHost{Domain: g.pick("*", "a.example.com", "*.example.com", "b.example.com")}
	for range g.r.IntN(5) + 10*g.r.IntN(2) {
		vh.Routes = append(vh.Routes, g.gatewayRoute())
	}
	return vh
}

// gatewayRoute is a random match with a source and an action: backends
// (some not in the table), a mirror, a redirect or a direct response, or
// a regular expression that does not compile.
func (g *versionGen) gatewayRoute() *rt.Route {
	r := g.route()
	r.Source = &rt.RouteSource{Kind: "HTTPRoute", Namespace: "ns", Name: g.pick("r1", "r2", "r3"), Rule: uint32(g.r.IntN(2))}
	switch g.r.IntN(6) {
	case 0:
		r.Action = &rt.Route_Redirect{Redirect: &rt.RedirectAction{Hostname: "elsewhere.example.com"}}
	case 1:
		r.Match.Path = &rt.RouteMatch_Regex{Regex: "/(unclosed"}
	default:
		ra := &rt.RouteAction{}
		for range 1 + g.r.IntN(2) {
			ra.Backends = append(ra.Backends, &rt.WeightedBackend{Backend: g.pick(append(genBackends, "missing")...), Weight: 1})
		}
		if g.r.IntN(4) == 0 {
			ra.Mirrors = []*rt.RequestMirror{{Backend: g.pick(genBackends...)}}
		}
		r.Action = &rt.Route_Route{Route: ra}
	}
	return r
}

// change changes the tables a little: a route, a virtual host, a backend
// or a listener added, changed or removed, the limits changed, or a table
// added or removed.
func (g *versionGen) change(tables []*rt.RouteTable) []*rt.RouteTable {
	tables = slices.Clone(tables)
	i := g.r.IntN(len(tables))
	t := proto.Clone(tables[i]).(*rt.RouteTable)
	tables[i] = t
	switch g.r.IntN(10) {
	case 0:
		if len(tables) == 1 {
			return append(tables, g.table("c/ns/two"))
		}
		return tables[:1]
	case 1:
		b := g.backend(g.pick(genBackends...))
		t.Backends = slices.DeleteFunc(t.Backends, func(o *rt.Backend) bool { return o.Name == b.Name })
		if g.r.IntN(3) > 0 {
			t.Backends = append(t.Backends, b)
		}
	case 2:
		j := g.r.IntN(len(t.Listeners))
		if g.r.IntN(2) == 0 && len(t.Listeners) > 1 {
			t.Listeners = slices.Delete(t.Listeners, j, j+1)
		} else {
			t.Listeners[j] = g.listener()
		}
	case 3:
		t.Limits = &rt.Limits{MaxConnectionsPerBackend: uint32(g.r.IntN(3))}
	default:
		g.changeRoutes(t.Listeners[g.r.IntN(len(t.Listeners))])
	}
	return tables
}

func (g *versionGen) changeRoutes(l *rt.Listener) {
	if len(l.VirtualHosts) == 0 || g.r.IntN(5) == 0 {
		l.VirtualHosts = append(l.VirtualHosts, g.vhost())
		return
	}
	vh := l.VirtualHosts[g.r.IntN(len(l.VirtualHosts))]
	switch j := g.r.IntN(len(vh.Routes) + 1); {
	case j == len(vh.Routes):
		vh.Routes = append(vh.Routes, g.gatewayRoute())
	case g.r.IntN(2) == 0:
		// Sometimes a block, as when a route of several matches goes.
		vh.Routes = slices.Delete(vh.Routes, j, min(j+1+g.r.IntN(2)*5, len(vh.Routes)))
	default:
		vh.Routes[j] = g.gatewayRoute()
	}
}

// keyPairs are the key pairs of a version: mostly as before, sometimes
// renewed, broken or missing.
func (g *versionGen) keyPairs() map[string]*rt.KeyPair {
	if g.kp == nil {
		g.kp = make([]int, len(g.keys))
	}
	out := map[string]*rt.KeyPair{}
	for i, versions := range g.keys {
		if g.r.IntN(5) == 0 {
			g.kp[i] = g.r.IntN(len(versions) + 1)
		}
		if g.kp[i] < len(versions) {
			out[versions[0].Name] = versions[g.kp[i]]
		}
	}
	return out
}

// testKeyPairs are infra/a and infra/b, each in two good versions and a
// bad one.
func testKeyPairs(t *testing.T) [][]*rt.KeyPair {
	var out [][]*rt.KeyPair
	for _, name := range []string{"infra/a", "infra/b"} {
		var versions []*rt.KeyPair
		for serial := range 2 {
			pub, key, err := ed25519.GenerateKey(cryptorand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(serial + 1)), DNSNames: []string{"a.example.com"},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
			der, err := x509.CreateCertificate(cryptorand.Reader, tmpl, tmpl, pub, key)
			if err != nil {
				t.Fatal(err)
			}
			pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			versions = append(versions, &rt.KeyPair{Name: name,
				CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
				PrivateKey:       pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})})
		}
		bad := proto.Clone(versions[0]).(*rt.KeyPair)
		bad.PrivateKey = versions[1].PrivateKey
		out = append(out, append(versions, bad))
	}
	return out
}

// configDiff says where two configs differ, "" when they do not: every
// value reachable from them, except the bookkeeping of what was taken over
// and what Apply adds (pools, breakers), and functions, which are
// compared only by whether they are set.
func configDiff(a, b *config) string {
	d := differ{seen: map[[2]uintptr]bool{}}
	return d.diff(reflect.ValueOf(a), reflect.ValueOf(b), "config")
}

type differ struct{ seen map[[2]uintptr]bool }

// notCompiled are fields that are not what a compile makes of a version.
var notCompiled = map[string]bool{
	"config.kept": true, "config.renewed": true, "config.keptAll": true, "config.unmoved": true,
	"backend.transport": true, "backend.upgrade": true, "backend.breaker": true,
}

func (d *differ) diff(a, b reflect.Value, path string) string {
	if a.Kind() != b.Kind() || a.Type() != b.Type() {
		return path + ": " + a.Type().String() + " against " + b.Type().String()
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return d.same(a.IsNil() == b.IsNil(), path, "nil")
		}
		if a.Kind() == reflect.Pointer {
			pair := [2]uintptr{a.Pointer(), b.Pointer()}
			if pair[0] == pair[1] || d.seen[pair] {
				return ""
			}
			d.seen[pair] = true
		}
		return d.diff(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if notCompiled[a.Type().Name()+"."+f.Name] {
				continue
			}
			if s := d.diff(a.Field(i), b.Field(i), path+"."+f.Name); s != "" {
				return s
			}
		}
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: %d elements against %d", path, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if s := d.diff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); s != "" {
				return s
			}
		}
	case reflect.Map:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: %d entries against %d", path, a.Len(), b.Len())
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() {
				return fmt.Sprintf("%s[%v]: missing", path, k)
			}
			if s := d.diff(a.MapIndex(k), bv, fmt.Sprintf("%s[%v]", path, k)); s != "" {
				return s
			}
		}
	case reflect.Func:
		return d.same(a.IsNil() == b.IsNil(), path, "set")
	case reflect.Chan:
		return d.same(a.IsNil() == b.IsNil() && a.Cap() == b.Cap(), path, "capacity")
	case reflect.UnsafePointer:
	case reflect.String:
		return d.same(a.String() == b.String(), path, fmt.Sprintf("%q against %q", a.String(), b.String()))
	case reflect.Bool:
		return d.same(a.Bool() == b.Bool(), path, "bool")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return d.same(a.Int() == b.Int(), path, fmt.Sprint(a.Int(), " against ", b.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return d.same(a.Uint() == b.Uint(), path, fmt.Sprint(a.Uint(), " against ", b.Uint()))
	default:
		return path + ": cannot compare " + a.Kind().String()
	}
	return ""
}

func (d *differ) same(ok bool, path, what string) string {
	if ok {
		return ""
	}
	return path + ": " + what
}

// TestChangedVirtualHostKeepsItsOtherRoutes: when routes of a virtual host
// are changed, added or removed, its other routes are taken over, not
// compiled again; after a block removed, all but the first route after it
// (found missing before the others are looked for elsewhere).
func TestChangedVirtualHostKeepsItsOtherRoutes(t *testing.T) {
	g := &versionGen{matchGen: matchGen{rand.New(rand.NewPCG(1, 2))}}
	routes := make([]*rt.Route, 12)
	for i := range routes {
		routes[i] = g.route()
	}
	for _, tc := range []struct {
		name     string
		version  func() []*rt.Route
		compiled int // routes of the version before compiled again
	}{
		{"one changed", func() []*rt.Route { r := slices.Clone(routes); r[3] = g.route(); return r }, 0},
		{"two added", func() []*rt.Route { return slices.Insert(slices.Clone(routes), 5, g.route(), g.route()) }, 0},
		{"a block removed", func() []*rt.Route { return slices.Delete(slices.Clone(routes), 2, 8) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			regexes := map[string]*rt.Regex{}
			old, _ := compileVhost(&rt.VirtualHost{Routes: routes}, nil, regexes, nil, nil)
			next := tc.version()
			v, _ := compileVhost(&rt.VirtualHost{Routes: next}, nil, regexes, old, func(*route) bool { return true })
			compiled := 0
			for i, r := range v.routes {
				if k := slices.Index(routes, next[i]); k >= 0 && r != old.routes[k] {
					compiled++
				}
			}
			if compiled != tc.compiled {
				t.Errorf("%d routes of the version before compiled again, want %d", compiled, tc.compiled)
			}
		})
	}
}
