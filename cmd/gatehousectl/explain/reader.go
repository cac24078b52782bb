package explain

import (
	"context"
	"reflect"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// listGetter reads one object by name with a list when a get is forbidden:
// the hub's role in a member grants list and watch, never get (it reads
// through informers), and a caller's role may be the same.
type listGetter struct{ client.Client }

func (c listGetter) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.Client.Get(ctx, key, obj, opts...)
	if !apierrors.IsForbidden(err) {
		return err
	}
	gvk, gerr := apiutil.GVKForObject(obj, c.Scheme())
	if gerr != nil {
		return err
	}
	gvk.Kind += "List"
	l, gerr := c.Scheme().New(gvk)
	if gerr != nil {
		return err
	}
	list := l.(client.ObjectList)
	if lerr := c.List(ctx, list, client.InNamespace(key.Namespace), client.MatchingFields{"metadata.name": key.Name}); lerr != nil {
		return err // the get's refusal says more than the list's
	}
	items, lerr := meta.ExtractList(list)
	if lerr != nil || len(items) == 0 {
		gr := schema.GroupResource{Group: gvk.Group, Resource: strings.ToLower(strings.TrimSuffix(gvk.Kind, "List"))}
		if m, merr := c.RESTMapper().RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: strings.TrimSuffix(gvk.Kind, "List")}, gvk.Version); merr == nil {
			gr = m.Resource.GroupResource()
		}
		return apierrors.NewNotFound(gr, key.Name)
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(items[0]).Elem())
	return nil
}
