package routetable

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Decoder decodes successive versions of route tables, each time reusing
// the messages of the version before whose encoding did not change: a
// backend, virtual host or route that arrives again byte for byte is the
// message it was. A version then costs reading its bytes once plus
// decoding what changed, instead of decoding every route again, and the
// proxy recognizes what did not change by identity (comparing messages'
// content costs about as much as compiling them).
//
// The messages Decode returns are shared with later versions: they must
// not be modified. A Decoder keeps the parts of the last version of each
// table, by table name; it is not safe for concurrent use.
type Decoder struct {
	tables map[string]*tableParts
}

// Field numbers of the messages the decoder takes apart
// (routetable.proto; a test holds them to the schema).
const (
	fieldListeners    protowire.Number = 2 // RouteTable.listeners
	fieldBackends     protowire.Number = 3 // RouteTable.backends
	fieldVirtualHosts protowire.Number = 6 // Listener.virtual_hosts
	fieldRoutes       protowire.Number = 2 // VirtualHost.routes
)

// tableParts are the parts of one table's last version by their encoding.
type tableParts struct {
	// version counts the versions decoded; a part not seen in the last
	// one is dropped.
	version  uint64
	backends parts[*Backend]
	vhosts   parts[*VirtualHost]
	routes   parts[*Route]
}

type parts[T proto.Message] map[string]*part[T]

type part[T proto.Message] struct {
	msg  T
	seen uint64
	// routes are a virtual host's: reusing it keeps them too, for the
	// version in which it changes.
	routes []*part[*Route]
}

// Decode decodes one version of a table. It gives the same message as
// proto.Unmarshal, except that its parts may be those of earlier versions.
func (d *Decoder) Decode(b []byte) (*RouteTable, error) {
	t := &RouteTable{}
	// The table's own fields first: its name says whose parts to reuse.
	rest, err := split(b, func(n protowire.Number, _ []byte) (bool, error) {
		return n == fieldListeners || n == fieldBackends, nil
	})
	if err == nil {
		err = proto.Unmarshal(rest, t)
	}
	if err != nil {
		return nil, err
	}
	ps := d.parts(t.Name)
	ps.version++
	_, err = split(b, func(n protowire.Number, v []byte) (bool, error) {
		switch n {
		case fieldListeners:
			l, err := ps.listener(v)
			if err != nil {
				return true, fmt.Errorf("listener: %w", err)
			}
			t.Listeners = append(t.Listeners, l)
		case fieldBackends:
			p, err := ps.backends.get(v, ps.version)
			if err != nil {
				return true, fmt.Errorf("backend: %w", err)
			}
			t.Backends = append(t.Backends, p.msg)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	ps.sweep()
	return t, nil
}

// parts are the parts kept of the table name.
func (d *Decoder) parts(name string) *tableParts {
	if d.tables == nil {
		d.tables = map[string]*tableParts{}
	}
	ps := d.tables[name]
	if ps == nil {
		ps = &tableParts{backends: parts[*Backend]{}, vhosts: parts[*VirtualHost]{}, routes: parts[*Route]{}}
		d.tables[name] = ps
	}
	return ps
}

func (ps *tableParts) listener(b []byte) (*Listener, error) {
	var vhosts []*VirtualHost
	rest, err := split(b, func(n protowire.Number, v []byte) (bool, error) {
		if n != fieldVirtualHosts {
			return false, nil
		}
		vh, err := ps.vhost(v)
		if err != nil {
			return true, fmt.Errorf("virtual host: %w", err)
		}
		vhosts = append(vhosts, vh)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	l := &Listener{}
	if err := proto.Unmarshal(rest, l); err != nil {
		return nil, err
	}
	l.VirtualHosts = vhosts
	return l, nil
}

// vhost is the virtual host b encodes: the one of that encoding before,
// or one of the routes of that encoding before and those that are new.
func (ps *tableParts) vhost(b []byte) (*VirtualHost, error) {
	if p, ok := ps.vhosts[string(b)]; ok {
		p.seen = ps.version
		for _, r := range p.routes {
			r.seen = ps.version
		}
		return p.msg, nil
	}
	p := &part[*VirtualHost]{msg: &VirtualHost{}, seen: ps.version}
	var routes []*Route
	rest, err := split(b, func(n protowire.Number, v []byte) (bool, error) {
		if n != fieldRoutes {
			return false, nil
		}
		r, err := ps.routes.get(v, ps.version)
		if err != nil {
			return true, fmt.Errorf("route: %w", err)
		}
		p.routes = append(p.routes, r)
		routes = append(routes, r.msg)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(rest, p.msg); err != nil {
		return nil, err
	}
	p.msg.Routes = routes
	ps.vhosts[string(b)] = p
	return p.msg, nil
}

// get is the message b encodes: the one of that encoding before, or b
// decoded.
func (m parts[T]) get(b []byte, version uint64) (*part[T], error) {
	if p, ok := m[string(b)]; ok {
		p.seen = version
		return p, nil
	}
	var zero T
	msg := zero.ProtoReflect().New().Interface().(T)
	if err := proto.Unmarshal(b, msg); err != nil {
		return nil, err
	}
	p := &part[T]{msg: msg, seen: version}
	m[string(b)] = p
	return p, nil
}

// sweep drops the parts the last version did not have.
func (ps *tableParts) sweep() {
	drop(ps.backends, ps.version)
	drop(ps.vhosts, ps.version)
	drop(ps.routes, ps.version)
}

func drop[T proto.Message](m parts[T], version uint64) {
	for k, p := range m {
		if p.seen != version {
			delete(m, k)
		}
	}
}

// split calls take with the value of each length-delimited field of an
// encoded message, in order, and returns the fields it does not take as
// they were encoded. Decoding what it returns into a message that holds
// the taken values, appended in order, gives the message: the fields
// taken are repeated, and what else the message holds keeps its order.
func split(b []byte, take func(protowire.Number, []byte) (bool, error)) ([]byte, error) {
	var rest []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		field := b[:n+m]
		b = b[n+m:]
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(field[n:])
			taken, err := take(num, v)
			if err != nil {
				return nil, err
			}
			if taken {
				continue
			}
		}
		rest = append(rest, field...)
	}
	return rest, nil
}
