package kubelet

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// envList keeps variables in definition order; a redefinition replaces
// the value in place.
type envList struct {
	names  []string
	values map[string]string
}

func (l *envList) set(name, value string) {
	if l.values == nil {
		l.values = map[string]string{}
	}
	if _, ok := l.values[name]; !ok {
		l.names = append(l.names, name)
	}
	l.values[name] = value
}

func (l *envList) lookup(name string) (string, bool) {
	v, ok := l.values[name]
	return v, ok
}

func (l *envList) environ() []string {
	out := make([]string, 0, len(l.names))
	for _, n := range l.names {
		out = append(out, n+"="+l.values[n])
	}
	return out
}

// resolveEnv builds a container's environment: PATH and HOSTNAME, then
// envFrom, then env with $(VAR) references expanded and valueFrom
// resolved (fieldRef, secretKeyRef, configMapKeyRef).
func (w *podWorker) resolveEnv(pod *corev1.Pod, c corev1.Container) ([]string, func(string) (string, bool), error) {
	var env envList
	env.set("PATH", defaultPath)
	env.set("HOSTNAME", podHostname(pod))
	services, err := w.k.serviceEnv()
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range services {
		env.set(kv[0], kv[1])
	}
	for _, from := range c.EnvFrom {
		data, err := w.envFromSource(pod.Namespace, from)
		if err != nil {
			return nil, nil, err
		}
		keys := make([]string, 0, len(data))
		for key := range data {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			env.set(from.Prefix+key, data[key])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env.set(e.Name, expand(e.Value, env.lookup))
			continue
		}
		value, err := w.envValueFrom(pod, e)
		if err != nil {
			return nil, nil, err
		}
		env.set(e.Name, value)
	}
	return env.environ(), env.lookup, nil
}

func (w *podWorker) envFromSource(namespace string, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := w.getConfigMap(namespace, from.ConfigMapRef.Name, ptrTrue(from.ConfigMapRef.Optional))
		if err != nil || cm == nil {
			return nil, err
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		secret, err := w.getSecret(namespace, from.SecretRef.Name, ptrTrue(from.SecretRef.Optional))
		if err != nil || secret == nil {
			return nil, err
		}
		data := map[string]string{}
		for k, v := range secret.Data {
			data[k] = string(v)
		}
		return data, nil
	}
	return nil, waiting("CreateContainerConfigError", "envFrom source of an unsupported kind")
}

func (w *podWorker) envValueFrom(pod *corev1.Pod, e corev1.EnvVar) (string, error) {
	from := e.ValueFrom
	switch {
	case from.FieldRef != nil:
		return w.podField(pod, from.FieldRef.FieldPath)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		secret, err := w.getSecret(pod.Namespace, ref.Name, ptrTrue(ref.Optional))
		if err != nil || secret == nil {
			return "", err
		}
		v, ok := secret.Data[ref.Key]
		if !ok && !ptrTrue(ref.Optional) {
			return "", waiting("CreateContainerConfigError", "couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := w.getConfigMap(pod.Namespace, ref.Name, ptrTrue(ref.Optional))
		if err != nil || cm == nil {
			return "", err
		}
		v, ok := cm.Data[ref.Key]
		if !ok && !ptrTrue(ref.Optional) {
			return "", waiting("CreateContainerConfigError", "couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, nil
	}
	return "", waiting("CreateContainerConfigError", "env %s: this kind of valueFrom is not supported by the fake kubelet", e.Name)
}

// podField resolves a downward API field path.
func (w *podWorker) podField(pod *corev1.Pod, path string) (string, error) {
	ip := w.cur.ip.String()
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return w.k.opts.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return ip, nil
	case "status.hostIP", "status.hostIPs":
		return w.k.opts.NodeIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok {
			if key, ok := strings.CutSuffix(key, "']"); ok {
				return m[key], nil
			}
		}
	}
	return "", waiting("CreateContainerConfigError", "field path %q is not supported by the fake kubelet", path)
}

// formatMap renders labels or annotations the way the downward API does.
func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for k, v := range m {
		lines = append(lines, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// getSecret returns nil without error for a missing optional Secret; a
// missing required one keeps the container waiting.
func (w *podWorker) getSecret(namespace, name string, optional bool) (*corev1.Secret, error) {
	s, err := w.k.client.CoreV1().Secrets(namespace).Get(w.k.ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && optional:
		return nil, nil
	case apierrors.IsNotFound(err):
		return nil, waiting("ContainerCreating", "secret %q not found", name)
	case err != nil:
		return nil, waiting("ContainerCreating", "getting secret %q: %v", name, err)
	}
	return s, nil
}

// getConfigMap is getSecret for ConfigMaps.
func (w *podWorker) getConfigMap(namespace, name string, optional bool) (*corev1.ConfigMap, error) {
	cm, err := w.k.client.CoreV1().ConfigMaps(namespace).Get(w.k.ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && optional:
		return nil, nil
	case apierrors.IsNotFound(err):
		return nil, waiting("ContainerCreating", "configmap %q not found", name)
	case err != nil:
		return nil, waiting("ContainerCreating", "getting configmap %q: %v", name, err)
	}
	return cm, nil
}

func ptrTrue(b *bool) bool { return b != nil && *b }

// expand replaces $(NAME) with the value of NAME when it is defined, and
// $$ with $, like Kubernetes does in env values, commands and args.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			ref := s[i : i+3+end]
			if v, ok := lookup(s[i+2 : i+2+end]); ok {
				b.WriteString(v)
			} else {
				b.WriteString(ref)
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
