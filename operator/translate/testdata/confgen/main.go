// Command confgen writes translate golden inputs for scenarios of the
// official Gateway API conformance suite: the suite's base objects that a
// test uses, the test's own manifest, and what the suite's runtime would add
// (the GatewayClass, the TLS Secrets it creates, EndpointSlices for Services).
// Run from the repository root:
//
//	go run ./operator/translate/testdata/confgen CASE=manifest.yaml[,manifest.yaml] …
//
// e.g. HTTPRouteSimpleSameNamespace=httproute-simple-same-namespace.yaml.
// cases.txt beside this file lists every scenario the golden tests cover:
//
//	go run ./operator/translate/testdata/confgen $(cat operator/translate/testdata/confgen/cases.txt)
//
// Existing inputs are overwritten; outputs are made by the golden test with
// -update and must be reviewed against the conformance test's expectations.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

const (
	className         = "gatehouse"
	conformanceModule = "sigs.k8s.io/gateway-api/conformance@v1.7.0"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: confgen CASE=manifest.yaml …")
		os.Exit(2)
	}
	dir := os.Getenv("CONFORMANCE_DIR")
	if dir == "" {
		// The suite is not a dependency of this module: fetch it into the
		// module cache at the version matching our gateway-api.
		out, err := exec.Command("go", "mod", "download", "-json", conformanceModule).Output()
		if err != nil {
			fail("downloading %s (or set CONFORMANCE_DIR): %v", conformanceModule, err)
		}
		var info struct{ Dir string }
		if err := json.Unmarshal(out, &info); err != nil {
			fail("%v", err)
		}
		dir = info.Dir
	}
	base := readDocs(filepath.Join(dir, "base", "manifests.yaml"))
	for _, arg := range os.Args[1:] {
		name, manifest, ok := strings.Cut(arg, "=")
		if !ok {
			fail("argument %q is not CASE=manifest.yaml", arg)
		}
		// Some tests apply several manifests: CASE=a.yaml,b.yaml.
		var docs []obj
		manifests := strings.Split(manifest, ",")
		for _, m := range manifests {
			docs = append(docs, readDocs(filepath.Join(dir, "tests", m))...)
		}
		goSource, _ := os.ReadFile(filepath.Join(dir, "tests", strings.TrimSuffix(manifests[0], ".yaml")+".go"))
		writeCase(name, base, docs, string(goSource))
	}
}

type obj map[string]any

func (o obj) kind() string { s, _ := o["kind"].(string); return s }
func (o obj) meta() map[string]any {
	m, _ := o["metadata"].(map[string]any)
	return m
}
func (o obj) name() string      { s, _ := o.meta()["name"].(string); return s }
func (o obj) namespace() string { s, _ := o.meta()["namespace"].(string); return s }

func readDocs(path string) []obj {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	data = bytes.ReplaceAll(data, []byte("{GATEWAY_CLASS_NAME}"), []byte(className))
	data = bytes.ReplaceAll(data, []byte("{GATEWAY_CONTROLLER_NAME}"), []byte("gatehouse.dev/gateway-controller"))
	var out []obj
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		var o obj
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			fail("%s: %v", path, err)
		}
		if o != nil && o.kind() != "" {
			out = append(out, o)
		}
	}
	return out
}

// inputs are the kinds translate reads; the rest (Deployments, Pods) are
// the suite's business.
var inputs = []string{"Namespace", "GatewayClass", "Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute",
	"TLSRoute", "TCPRoute", "UDPRoute", "ReferenceGrant", "BackendTLSPolicy", "Service", "Secret", "ConfigMap", "EndpointSlice"}

func writeCase(name string, base, docs []obj, goSource string) {
	var out []obj
	out = append(out, obj{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
		"metadata": map[string]any{"name": className},
		"spec":     map[string]any{"controllerName": "gatehouse.dev/gateway-controller"},
	})
	used := usedGateways(docs, goSource)
	for _, o := range base {
		switch o.kind() {
		case "Namespace", "Service":
			out = append(out, o)
		case "Gateway":
			if used[o.name()] {
				out = append(out, o)
			}
		}
	}
	for _, o := range docs {
		if slices.Contains(inputs, o.kind()) {
			out = append(out, o)
		}
	}
	for _, o := range out {
		// The apiserver starts every object at generation 1.
		if api, _ := o["apiVersion"].(string); strings.HasPrefix(api, "gateway.networking.k8s.io/") {
			o.meta()["generation"] = 1
		}
	}
	out = append(out, suiteSecrets(out)...)
	out = append(out, suiteCAs(out)...)
	out = append(out, endpointSlices(out)...)
	var b strings.Builder
	fmt.Fprintf(&b, "# Conformance scenario %s: the suite's base objects it uses, its manifest,\n# and what the suite creates at run time (GatewayClass, TLS Secrets, EndpointSlices).\n", name)
	for _, o := range out {
		data, err := yaml.Marshal(o)
		if err != nil {
			fail("%v", err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	path := filepath.Join("operator", "translate", "testdata", "conformance-"+name+".in.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fail("%v", err)
	}
	fmt.Println("wrote", path)
}

// usedGateways are the base Gateways the test's routes or its Go code name.
func usedGateways(docs []obj, goSource string) map[string]bool {
	used := map[string]bool{}
	for _, name := range []string{"same-namespace", "same-namespace-with-https-listener", "all-namespaces", "backend-namespaces"} {
		if strings.Contains(goSource, `"`+name+`"`) {
			used[name] = true
		}
	}
	for _, o := range docs {
		spec, _ := o["spec"].(map[string]any)
		refs, _ := spec["parentRefs"].([]any)
		for _, r := range refs {
			if m, ok := r.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					used[n] = true
				}
			}
		}
	}
	return used
}

// suiteSecrets are the TLS Secrets the suite creates before the tests, for
// those a listener refers to.
func suiteSecrets(objs []obj) []obj {
	created := map[string]bool{
		"gateway-conformance-web-backend/certificate":                true,
		"gateway-conformance-infra/tls-validity-checks-certificate":  true,
		"gateway-conformance-infra/tls-checks-certificate":           true,
		"gateway-conformance-infra/tls-terminate-checks-certificate": true,
	}
	have := map[string]bool{}
	for _, o := range objs {
		if o.kind() == "Secret" {
			have[o.namespace()+"/"+o.name()] = true
		}
	}
	var out []obj
	for _, o := range objs {
		if o.kind() != "Gateway" && o.kind() != "ListenerSet" {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		listeners, _ := spec["listeners"].([]any)
		for _, l := range listeners {
			lm, _ := l.(map[string]any)
			tls, _ := lm["tls"].(map[string]any)
			refs, _ := tls["certificateRefs"].([]any)
			for _, r := range refs {
				rm, _ := r.(map[string]any)
				ns, _ := rm["namespace"].(string)
				if ns == "" {
					ns = o.namespace()
				}
				name, _ := rm["name"].(string)
				k := ns + "/" + name
				if created[k] && !have[k] {
					have[k] = true
					out = append(out, tlsSecret(ns, name))
				}
			}
		}
	}
	return out
}

// caRefs are the caCertificateRefs of a BackendTLSPolicy's validation, or
// of the validations of a Gateway's spec.tls.frontend.
func caRefs(o obj) []any {
	spec, _ := o["spec"].(map[string]any)
	var validations []any
	switch o.kind() {
	case "BackendTLSPolicy":
		validations = append(validations, spec["validation"])
	case "Gateway":
		tls, _ := spec["tls"].(map[string]any)
		frontend, _ := tls["frontend"].(map[string]any)
		def, _ := frontend["default"].(map[string]any)
		validations = append(validations, def["validation"])
		perPort, _ := frontend["perPort"].([]any)
		for _, p := range perPort {
			pm, _ := p.(map[string]any)
			ptls, _ := pm["tls"].(map[string]any)
			validations = append(validations, ptls["validation"])
		}
	}
	var refs []any
	for _, v := range validations {
		vm, _ := v.(map[string]any)
		r, _ := vm["caCertificateRefs"].([]any)
		refs = append(refs, r...)
	}
	return refs
}

// suiteCAs are the CA ConfigMaps the suite creates, for those a
// BackendTLSPolicy or a Gateway's client-certificate validation refers to.
func suiteCAs(objs []obj) []obj {
	created := map[string]bool{
		"tls-validity-checks-ca-certificate": true, "tls-validity-checks-per-port-ca-certificate": true,
		"tls-checks-ca-certificate": true, "mismatch-ca-certificate": true,
	}
	have := map[string]bool{}
	var out []obj
	for _, o := range objs {
		for _, r := range caRefs(o) {
			rm, _ := r.(map[string]any)
			name, _ := rm["name"].(string)
			k := o.namespace() + "/" + name
			if created[name] && !have[k] {
				have[k] = true
				cert, _ := keyPair(name, true)
				out = append(out, obj{
					"apiVersion": "v1", "kind": "ConfigMap",
					"metadata": map[string]any{"name": name, "namespace": o.namespace()},
					"data":     map[string]any{"ca.crt": cert},
				})
			}
		}
	}
	return out
}

func tlsSecret(ns, name string) obj {
	cert, key := keyPair(name, false)
	return obj{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"stringData": map[string]any{"tls.crt": cert, "tls.key": key},
	}
}

// keyPair makes a self-signed certificate and its key, PEM encoded.
func keyPair(name string, isCA bool) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("%v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{"*", "*.org", "*.wildcard.org", "*.example.com", "example.org"},
		NotBefore:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:         isCA, BasicConstraintsValid: isCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		fail("%v", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		fail("%v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

// endpointSlices gives every Service with a selector one ready endpoint, as
// the endpointslice controller would for its one Pod.
func endpointSlices(objs []obj) []obj {
	var out []obj
	n := 0
	for _, o := range objs {
		if o.kind() != "Service" {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		if _, ok := spec["selector"]; !ok {
			continue
		}
		n++
		var ports []any
		svcPorts, _ := spec["ports"].([]any)
		for _, p := range svcPorts {
			pm, _ := p.(map[string]any)
			target := pm["targetPort"]
			if target == nil {
				target = pm["port"]
			}
			if _, isNumber := target.(float64); !isNumber {
				target = 3000
			}
			port := map[string]any{"port": target, "protocol": "TCP"}
			if name, ok := pm["name"].(string); ok {
				port["name"] = name
			}
			if ap, ok := pm["appProtocol"]; ok {
				port["appProtocol"] = ap
			}
			ports = append(ports, port)
		}
		out = append(out, obj{
			"apiVersion":  "discovery.k8s.io/v1",
			"kind":        "EndpointSlice",
			"addressType": "IPv4",
			"metadata": map[string]any{
				"name": o.name() + "-1", "namespace": o.namespace(),
				"labels": map[string]any{"kubernetes.io/service-name": o.name()},
			},
			"endpoints": []any{map[string]any{
				"addresses":  []any{fmt.Sprintf("10.244.%d.%d", n/250, n%250+1)},
				"conditions": map[string]any{"ready": true},
				"targetRef":  map[string]any{"kind": "Pod", "name": o.name() + "-pod", "namespace": o.namespace()},
			}},
			"ports": ports,
		})
	}
	return out
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "confgen: "+format+"\n", args...)
	os.Exit(1)
}
