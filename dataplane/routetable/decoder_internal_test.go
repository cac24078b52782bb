package routetable

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestDecoderFieldNumbers holds the decoder's field numbers to the schema.
func TestDecoderFieldNumbers(t *testing.T) {
	for _, tc := range []struct {
		msg  proto.Message
		name protoreflect.Name
		num  protowire.Number
	}{
		{&RouteTable{}, "listeners", fieldListeners},
		{&RouteTable{}, "backends", fieldBackends},
		{&Listener{}, "virtual_hosts", fieldVirtualHosts},
		{&VirtualHost{}, "routes", fieldRoutes},
	} {
		f := tc.msg.ProtoReflect().Descriptor().Fields().ByName(tc.name)
		if f == nil || f.Number() != tc.num || f.Kind() != protoreflect.MessageKind || !f.IsList() {
			t.Errorf("%s.%s: the decoder takes field %d as a repeated message; the schema says %v", tc.msg.ProtoReflect().Descriptor().Name(), tc.name, tc.num, f)
		}
	}
}
