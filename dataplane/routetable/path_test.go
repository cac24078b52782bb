package routetable

import "testing"

func TestCanonicalEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"/plain":          "/plain",
		"/caf%c3%a9":      "/caf%C3%A9",
		"/%7Euser":        "/~user",
		"/%70ublic":       "/public",
		"/a%2fb":          "/a%2Fb",
		"/a%2Fb%3f":       "/a%2Fb%3F",
		"/100%":           "/100%25",
		"/%zz":            "/%25zz",
		"/%2":             "/%252",
		"/%252F":          "/%252F",
		"/%2e%2E/x":       "/../x",
		"/mixed%41%2a%5f": "/mixedA%2A_",
	} {
		if got := CanonicalEscapes(in); got != want {
			t.Errorf("CanonicalEscapes(%q) = %q, want %q", in, got, want)
		}
	}
}
