package members

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// AnnotationTokenExpires on a member Secret says when the token in its
// kubeconfig expires (RFC 3339); `gatehousectl join` writes it. The hub
// exports it as a metric so that an alert fires before the member goes dark.
const AnnotationTokenExpires = "gatehouse.dev/token-expires"

// TokenExpiry reads AnnotationTokenExpires. ok is false when the Secret has
// none (a token that does not expire, or a Secret written by hand) or when
// it is not a time.
func TokenExpiry(s *corev1.Secret) (t time.Time, ok bool) {
	v, found := s.Annotations[AnnotationTokenExpires]
	if !found {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}
