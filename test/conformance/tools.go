//go:build tools

// Package conformance runs the official Gateway API conformance suite
// against Gatehouse; see README.md.
package conformance

import (
	_ "sigs.k8s.io/gateway-api-conformance-images/echo-basic"
	_ "sigs.k8s.io/gateway-api/conformance"
)
