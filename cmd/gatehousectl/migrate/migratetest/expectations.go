// Package migratetest reads testdata/expectations.yaml of the migrate
// package: for each Ingress file, requests and where the Ingress sent them.
// The converter's unit test checks them against a model of HTTPRoute
// matching; the e2e test sends them through a real proxy.
package migratetest

import (
	"cmp"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// Expectations is the whole file; its header documents the test bed.
type Expectations struct {
	// Gateway is "namespace/name" of the shared Gateway routes attach to.
	Gateway string `json:"gateway"`
	Files   []File `json:"files"`
}

// File lists the requests checked for one Ingress file.
type File struct {
	File     string        `json:"file"`
	Requests []Expectation `json:"requests"`
}

// Expectation is one request and what must answer it.
type Expectation struct {
	Scheme              string            `json:"scheme,omitempty"`
	Host                string            `json:"host"`
	Path                string            `json:"path"`
	Headers             map[string]string `json:"headers,omitempty"`
	Why                 string            `json:"why,omitempty"`
	WantStatus          int               `json:"wantStatus"`
	WantService         string            `json:"wantService,omitempty"`
	WantPort            int32             `json:"wantPort,omitempty"`
	WantPath            string            `json:"wantPath,omitempty"`
	WantSplit           []Share           `json:"wantSplit,omitempty"`
	WantLocation        string            `json:"wantLocation,omitempty"`
	WantResponseHeaders map[string]string `json:"wantResponseHeaders,omitempty"`
}

// Share is one backend of a weighted split.
type Share struct {
	Service string `json:"service"`
	Port    int32  `json:"port"`
	Weight  int32  `json:"weight"`
}

// Load reads an expectations file; unknown fields are errors.
func Load(path string) (Expectations, error) {
	var exp Expectations
	data, err := os.ReadFile(path)
	if err != nil {
		return exp, err
	}
	if err := yaml.UnmarshalStrict(data, &exp); err != nil {
		return exp, fmt.Errorf("%s: %w", path, err)
	}
	return exp, nil
}

// RequestScheme is the request's scheme, http unless said.
func (e Expectation) RequestScheme() string { return cmp.Or(e.Scheme, "http") }

// String names the request as a failure message would.
func (e Expectation) String() string {
	s := fmt.Sprintf("GET %s://%s%s", e.RequestScheme(), e.Host, e.Path)
	if len(e.Headers) > 0 {
		s += fmt.Sprintf(" %v", e.Headers)
	}
	if e.Why != "" {
		s += " (" + e.Why + ")"
	}
	return s
}

// WellFormed says what an expectation lacks to be checkable.
func (e Expectation) WellFormed() error {
	switch {
	case e.Host == "" || len(e.Path) == 0 || e.Path[0] != '/':
		return fmt.Errorf("host and an absolute path are required")
	case e.WantStatus == 200 && (e.WantService == "") == (len(e.WantSplit) == 0):
		return fmt.Errorf("status 200 needs wantService or wantSplit")
	case e.WantStatus == 200 && e.WantPath == "":
		return fmt.Errorf("status 200 needs wantPath")
	case e.WantStatus >= 300 && e.WantStatus < 400 && e.WantLocation == "":
		return fmt.Errorf("a redirect needs wantLocation")
	}
	return nil
}
