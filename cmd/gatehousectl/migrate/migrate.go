package migrate

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Options says where the converted routes attach and which Ingresses to read.
type Options struct {
	// Gateway is the shared Gateway every route names in its parentRefs.
	Gateway types.NamespacedName
	// SectionName, when set, is the listener of Gateway the routes attach to.
	SectionName string
	// IngressClass, when set, converts only the Ingresses of this class
	// (spec.ingressClassName or the kubernetes.io/ingress.class annotation).
	IngressClass string
}

// Result is what Convert produced.
type Result struct {
	// Routes in namespace/name order.
	Routes []*gwv1.HTTPRoute
	// Notes in Ingress order, one per issue.
	Notes []Note
}

// Note is something that was not, or not fully, converted.
type Note struct {
	Ingress types.NamespacedName
	// Field is the path of the Ingress field or annotation concerned, e.g.
	// `spec.rules[0].http.paths[1].backend.service.port.name` or
	// `metadata.annotations[nginx.ingress.kubernetes.io/server-snippet]`.
	Field string
	// Message says what was lost and what a person must do about it.
	Message string
}

func (n Note) String() string {
	return fmt.Sprintf("%s: %s: %s", n.Ingress, n.Field, n.Message)
}

// Convert turns Ingresses into HTTPRoutes attached to o.Gateway. services
// resolves Service ports given by name; it may be nil. The result depends only
// on the arguments: the order of ingresses does not matter.
func Convert(ingresses []networkingv1.Ingress, services map[types.NamespacedName]*corev1.Service, o Options) Result {
	c := &converter{opts: o, services: services}
	sorted := make([]*networkingv1.Ingress, 0, len(ingresses))
	for i := range ingresses {
		sorted = append(sorted, &ingresses[i])
	}
	slices.SortStableFunc(sorted, func(a, b *networkingv1.Ingress) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})

	var primaries, canaries []*source
	for _, ing := range sorted {
		if !c.selected(ing) {
			continue
		}
		s := c.read(ing)
		if s.cfg.canary.enabled {
			canaries = append(canaries, s)
		} else {
			primaries = append(primaries, s)
		}
	}
	for _, s := range primaries {
		c.collect(s)
	}
	for _, s := range canaries {
		c.mergeCanary(s, primaries)
	}
	var built []builtRoute
	for _, s := range primaries {
		built = append(built, c.routes(s)...)
	}
	routes := uniqueNames(built)
	slices.SortFunc(routes, func(a, b *gwv1.HTTPRoute) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	slices.SortStableFunc(c.notes, func(a, b Note) int {
		return cmp.Or(cmp.Compare(a.Ingress.Namespace, b.Ingress.Namespace), cmp.Compare(a.Ingress.Name, b.Ingress.Name))
	})
	return Result{Routes: routes, Notes: c.notes}
}

// converter holds what one Convert call needs and collects its Notes.
type converter struct {
	opts     Options
	services map[types.NamespacedName]*corev1.Service
	notes    []Note
}

func (c *converter) note(s *source, field, format string, args ...any) {
	c.notes = append(c.notes, Note{Ingress: s.key, Field: field, Message: fmt.Sprintf(format, args...)})
}

const classAnnotation = "kubernetes.io/ingress.class"

// selected applies Options.IngressClass. An Ingress naming no class is served
// by the cluster's default IngressClass, which Convert cannot see: it is left
// out with a Note rather than guessed.
func (c *converter) selected(ing *networkingv1.Ingress) bool {
	want := c.opts.IngressClass
	if want == "" {
		return true
	}
	byField := ing.Spec.IngressClassName != nil && *ing.Spec.IngressClassName == want
	annotation, hasAnnotation := ing.Annotations[classAnnotation]
	if byField || (hasAnnotation && annotation == want) {
		return true
	}
	if ing.Spec.IngressClassName == nil && !hasAnnotation {
		c.notes = append(c.notes, Note{
			Ingress: types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name},
			Field:   "spec.ingressClassName",
			Message: fmt.Sprintf("no IngressClass named, so it belongs to the cluster's default class; not converted with --ingress-class %s: if the default class is %s, set spec.ingressClassName and run again", want, want),
		})
	}
	return false
}
