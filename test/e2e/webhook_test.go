package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatehouse-dev/gatehouse/operator/hub"
	"github.com/gatehouse-dev/gatehouse/operator/webhooktoken"
	"github.com/gatehouse-dev/gatehouse/test/env"
)

// TestWebhookAnswersOnlyMembers attacks the hub's admission webhook as an
// unauthenticated client and as the admin of member-1, who can read
// member-1's registration: asking about member-2 without a token, with a
// guessed one or with member-1's gets a bare 403 where the hub used to
// answer which tenant owns which hostname. The members' own API servers are
// still answered, before and after the key is rotated.
func TestWebhookAnswersOnlyMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bins := build(t, "gatehouse")
	fleet, hubClient := fleetWithTenants(t, ctx, 2)
	members := map[string]client.Client{}
	for _, m := range fleet.Members {
		c, err := client.New(m.Config, client.Options{Scheme: env.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}); err != nil {
			t.Fatal(err)
		}
		members[m.Name] = c
	}

	whAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startHub(t, ctx, fleet, bins["gatehouse"], "--webhook-address", whAddr, "--webhook-url", "https://"+whAddr, "--webhook-failure-policy", "Ignore")
	registered := func(member, not string) string {
		t.Helper()
		var url string
		waitFor(t, 90*time.Second, member+"'s webhook registration", func() bool {
			var vwc admissionregistrationv1.ValidatingWebhookConfiguration
			if members[member].Get(ctx, types.NamespacedName{Name: hub.WebhookConfigurationName}, &vwc) != nil || len(vwc.Webhooks) != 1 {
				return false
			}
			w := vwc.Webhooks[0]
			if w.ClientConfig.URL == nil || len(w.ClientConfig.CABundle) == 0 {
				return false
			}
			url = *w.ClientConfig.URL
			return strings.HasPrefix(url, "https://"+whAddr+"/validate/"+member+"/") && url != not
		})
		return url
	}
	member1URL, member2URL := registered("member-1", ""), registered("member-2", "")
	member1Token := member1URL[strings.LastIndex(member1URL, "/")+1:]

	// web claiming payments' hostname in member-2: the answer the hub gave
	// anyone who asked names payments as the owner.
	attack := func(t *testing.T, url string) {
		t.Helper()
		code, body := postReview(t, url, "web", checkoutHost)
		if code != http.StatusForbidden {
			t.Errorf("POST %s: HTTP %d, want 403: %s", url, code, body)
		}
		for _, secret := range []string{"payments", checkoutHost, "tenant", "allowed"} {
			if strings.Contains(body, secret) {
				t.Errorf("POST %s: the refusal mentions %q: %s", url, secret, body)
			}
		}
	}
	base := "https://" + whAddr
	t.Run("an unauthenticated client gets nothing", func(t *testing.T) {
		attack(t, base+"/validate/member-2")
		attack(t, base+"/validate/member-2/")
		attack(t, base+"/validate/member-2/"+strings.Repeat("A", len(member1Token)))
	})
	t.Run("member-1's token does not speak for member-2", func(t *testing.T) {
		attack(t, base+"/validate/member-2/"+member1Token)
	})

	// The API servers' own calls, with the usual message.
	refusedAtApply := func(t *testing.T, member string) {
		t.Helper()
		r := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "grab"},
			Spec: gwv1.HTTPRouteSpec{Hostnames: []gwv1.Hostname{checkoutHost}}}
		err := members[member].Create(ctx, r)
		if err == nil {
			_ = members[member].Delete(ctx, r)
			t.Fatalf("%s admitted a route of web for payments' hostname: its API server was not answered", member)
		}
		for _, want := range []string{`admission webhook "routes.gatehouse.dev" denied the request`, `"checkout.apps.example.test" is delegated to tenant "payments"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v\nwant it to contain %s", member, err, want)
			}
		}
	}
	t.Run("the members' API servers are answered", func(t *testing.T) {
		refusedAtApply(t, "member-1")
		refusedAtApply(t, "member-2")
		if code, body := postReview(t, member2URL, "web", checkoutHost); code != http.StatusOK || !strings.Contains(body, `delegated to tenant \"payments\"`) {
			t.Errorf("member-2's own URL: HTTP %d: %s", code, body)
		}
	})

	t.Run("after a rotation members are registered anew and the old token lasts the grace period", func(t *testing.T) {
		// The operators' guide: move the key to previous-key.
		var s corev1.Secret
		key := types.NamespacedName{Namespace: env.HubNamespace, Name: "gatehouse-webhook-key"}
		if err := hubClient.Get(ctx, key, &s); err != nil {
			t.Fatal(err)
		}
		patch := []byte(`[{"op":"move","from":"/data/` + webhooktoken.KeyCurrent + `","path":"/data/` + webhooktoken.KeyPrevious + `"}]`)
		if err := hubClient.Patch(ctx, &s, client.RawPatch(types.JSONPatchType, patch)); err != nil {
			t.Fatal(err)
		}
		rotated := registered("member-2", member2URL)
		refusedAtApply(t, "member-2")
		for _, url := range []string{rotated, member2URL} {
			if code, body := postReview(t, url, "web", checkoutHost); code != http.StatusOK {
				t.Errorf("POST %s: HTTP %d: %s", url, code, body)
			}
		}
		attack(t, base+"/validate/member-2/"+registered("member-1", member1URL)[len(base+"/validate/member-1/"):])
	})
}

// postReview sends what a member's API server would for a new HTTPRoute in
// ns with host, trusting any certificate as an attacker would.
func postReview(t *testing.T, url, ns, host string) (int, string) {
	t.Helper()
	raw, err := json.Marshal(&gwv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"},
		Spec:       gwv1.HTTPRouteSpec{Hostnames: []gwv1.Hostname{gwv1.Hostname(host)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "probe",
			Kind:      metav1.GroupVersionKind{Group: gwv1.GroupName, Version: "v1", Kind: "HTTPRoute"},
			Resource:  metav1.GroupVersionResource{Group: gwv1.GroupName, Version: "v1", Resource: "httproutes"},
			Namespace: ns, Name: "probe", Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: "system:admin", Groups: []string{"system:masters"}},
			Object:   runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
