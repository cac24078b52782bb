package hub

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/dataplane/xds"
	"github.com/gatehouse-dev/gatehouse/operator/status"
	"github.com/gatehouse-dev/gatehouse/operator/translate"
)

// gateways writes each Gateway's status: translate's, with Programmed from
// what its proxies serve, its addresses and its listeners'.
func (sw *statusWriter) gateways(in translate.Input, d *decided, sv *serving) {
	for _, gw := range in.Gateways {
		k := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
		ours, ok := d.out.Gateways[k]
		if !ok {
			continue
		}
		gw = latest(sw, gw)
		ours = ours.DeepCopy()
		f := sv.answer(k, objectKey("Gateway", gw.Namespace, gw.Name, gw.Generation))
		node := sv.node(k)
		failed := unserved(node.Node, node)
		ours.Conditions = partlyServed(programmed(ours.Conditions, f, gw.Status.Conditions), failed)
		if why, ok := d.refusals[k]; ok {
			ours.Conditions = notServed(ours.Conditions, why)
		}
		gatewayAddresses(ours, gw, d.out.Parameters[string(gw.Spec.GatewayClassName)], d.addresses, node)
		ours.Conditions = withProxyVersions(ours.Conditions, node, f)
		for i := range ours.Listeners {
			l := &ours.Listeners[i]
			l.Conditions = programmed(l.Conditions, f, storedListener(gw.Status.Listeners, l.Name))
			if why, ok := failed[string(l.Name)]; ok {
				l.Conditions = listenerNotServed(l.Conditions, why)
			}
		}
		next := status.MergeGatewayStatus(&gw.Status, ours, sw.now)
		if !equality.Semantic.DeepEqual(&gw.Status, next) {
			announce(sw.recorder, gw, gw.Status.Conditions, next.Conditions)
			obj := gw.DeepCopy()
			obj.Status = *next
			sw.update(obj)
		}
	}
}

// storedListener is the stored conditions of a Gateway's listener.
func storedListener(stored []gwv1.ListenerStatus, name gwv1.SectionName) []metav1.Condition {
	for _, s := range stored {
		if s.Name == name {
			return s.Conditions
		}
	}
	return nil
}

// gatewayAddresses sets a Gateway's addresses (see assignAddresses) and
// turns its Programmed False when clients cannot use them: in external
// mode, addresses neither the class lists nor a proxy advertises; in
// managed mode, addresses its proxies' Service was not given; in any mode,
// an address spec.addresses asks to be assigned that no source has.
func gatewayAddresses(ours *gwv1.GatewayStatus, gw *gwv1.Gateway, params translate.ClassParameters,
	provisioned map[types.NamespacedName][]gwv1.GatewayStatusAddress, node xds.NodeStatus) {
	k := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	advertised := node.Addresses
	unassigned := assignAddresses(ours, gw, params, provisioned[k], advertised)
	if params.Mode == translate.ModeExternal {
		var unusable []string
		ours.Addresses, unusable = usableAddresses(ours.Addresses, params.Addresses, advertised)
		switch {
		case len(unusable) > 0:
			ours.Conditions = notProgrammed(ours.Conditions, string(gwv1.GatewayReasonAddressNotUsable), fmt.Sprintf(
				"spec.addresses %s: neither the GatewayClass parameters list them nor does a proxy of this Gateway answer on them (its proxies advertise %s)",
				strings.Join(unusable, ", "), orNone(advertised)))
		case len(ours.Addresses) == 0:
			ours.Conditions = notProgrammed(ours.Conditions, string(gwv1.GatewayReasonAddressNotAssigned),
				"no address: list addresses in the GatewayClass parameters, or start the Gateway's proxies with --advertise-address")
		}
	}
	if service, ok := provisioned[k]; ok {
		var unusable []string
		ours.Addresses, unusable = managedAddresses(ours.Addresses, service)
		if len(unusable) > 0 {
			ours.Conditions = notProgrammed(ours.Conditions, string(gwv1.GatewayReasonAddressNotUsable), fmt.Sprintf(
				"spec.addresses %s: the proxies' Service %s was not given them (its addresses: %s); a LoadBalancer Service asks its load balancer for the first IP address of spec.addresses, a ClusterIP Service has its cluster IP only",
				strings.Join(unusable, ", "), proxyServiceName(gw.Name), orNone(addressValues(service))))
		}
	}
	if len(unassigned) > 0 {
		ours.Conditions = notProgrammed(ours.Conditions, string(gwv1.GatewayReasonAddressNotAssigned), fmt.Sprintf(
			"spec.addresses asks for an address of type %s to be assigned, and there is none of that type: %s",
			strings.Join(unassigned, ", "), addressSources(params, advertised)))
	}
}

// listenerSets writes each ListenerSet's status: translate's, with
// Programmed from what its Gateway's proxies serve of it.
func (sw *statusWriter) listenerSets(in translate.Input, out translate.Output, sv *serving) {
	for _, ls := range in.ListenerSets {
		k := types.NamespacedName{Namespace: ls.Namespace, Name: ls.Name}
		ours, ok := out.ListenerSets[k]
		if !ok {
			continue
		}
		ls = latest(sw, ls)
		ours = ours.DeepCopy()
		gw := parentOf(ls)
		f := sv.answer(gw, objectKey("ListenerSet", ls.Namespace, ls.Name, ls.Generation))
		node := sv.node(gw)
		failed := ofListenerSet(unserved(node.Node, node), ls.Namespace, ls.Name)
		ours.Conditions = partlyServed(programmed(ours.Conditions, f, ls.Status.Conditions), failed)
		next := ls.Status.DeepCopy()
		next.Conditions = status.MergeConditions(ls.Status.Conditions, ours.Conditions, sw.now)
		next.Listeners = nil
		for _, l := range ours.Listeners {
			var prev []metav1.Condition
			for _, s := range ls.Status.Listeners {
				if s.Name == l.Name {
					prev = s.Conditions
				}
			}
			l.Conditions = programmed(l.Conditions, f, prev)
			if why, ok := failed[ls.Namespace+"/"+ls.Name+"/"+string(l.Name)]; ok {
				l.Conditions = listenerNotServed(l.Conditions, why)
			}
			l.Conditions = status.MergeConditions(prev, l.Conditions, sw.now)
			next.Listeners = append(next.Listeners, l)
		}
		if !equality.Semantic.DeepEqual(&ls.Status, next) {
			obj := ls.DeepCopy()
			obj.Status = *next
			sw.update(obj)
		}
	}
}
