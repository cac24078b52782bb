package join

import (
	"encoding/base64"
	"testing"
)

// Leave waits for the member to refuse the hub's token only when the token
// depends on a credential it deleted; which one, the token's claims say.
func TestBoundSecret(t *testing.T) {
	jwt := func(claims string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	for _, tc := range []struct{ name, token, want string }{
		{"a TokenRequest token bound to a Secret",
			jwt(`{"kubernetes.io":{"namespace":"gatehouse-system","secret":{"name":"gatehouse-hub-credential-x7k2p","uid":"u"},"serviceaccount":{"name":"gatehouse-hub","uid":"v"}}}`),
			"gatehouse-system/gatehouse-hub-credential-x7k2p"},
		{"a service-account-token Secret's token",
			jwt(`{"kubernetes.io/serviceaccount/namespace":"gatehouse-system","kubernetes.io/serviceaccount/secret.name":"gatehouse-hub-token-q8w4r"}`),
			"gatehouse-system/gatehouse-hub-token-q8w4r"},
		{"a TokenRequest token bound to nothing", jwt(`{"kubernetes.io":{"namespace":"gatehouse-system","serviceaccount":{"name":"gatehouse-hub"}}}`), ""},
		{"not a JWT", "admin-token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := boundSecret(tc.token); got != tc.want {
				t.Errorf("boundSecret = %q, want %q", got, tc.want)
			}
		})
	}
}
