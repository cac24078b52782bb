package servingcert_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/gatehouse-dev/gatehouse/operator/servingcert"
)

const (
	caNamespace = "gatehouse-system"
	caName      = "gatehouse-webhook-ca"
)

var caKey = client.ObjectKey{Namespace: caNamespace, Name: caName}

// run runs a's Start until the test ends.
func run(t *testing.T, a *servingcert.Authority) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Start(t.Context()) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
}

// start runs a and waits for its first certificate.
func start(t *testing.T, a *servingcert.Authority) {
	t.Helper()
	run(t, a)
	eventually(t, "the authority is ready", a.Ready)
}

func leaf(t *testing.T, src servingcert.Source) *x509.Certificate {
	t.Helper()
	cert, err := src.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	return cert.Leaf
}

func getSecret(t *testing.T, c client.Client) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(context.Background(), caKey, &s); err != nil {
		t.Fatalf("reading CA Secret: %v", err)
	}
	return &s
}

func caSecret(data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: caNamespace, Name: caName},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

var testHosts = []string{"gatehouse-webhook.gatehouse-system.svc", "127.0.0.1"}

func TestAuthorityCASecret(t *testing.T) {
	cases := []struct {
		name string
		// setup returns the hub's client and the CA it must end up with;
		// nil means whatever the Authority created.
		setup func(t *testing.T) (client.Client, []byte)
	}{{
		name: "creates the Secret when absent",
		setup: func(t *testing.T) (client.Client, []byte) {
			return fake.NewClientBuilder().Build(), nil
		},
	}, {
		name: "reuses a CA another replica created earlier",
		setup: func(t *testing.T) (client.Client, []byte) {
			c := fake.NewClientBuilder().Build()
			first := servingcert.NewAuthority(c, caNamespace, caName, testHosts, servingcert.AuthorityOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- first.Start(ctx) }()
			eventually(t, "the first authority is ready", first.Ready)
			cancel()
			<-done
			return c, first.CABundle()
		},
	}, {
		name: "reuses a CA an administrator made with openssl-style keys",
		setup: func(t *testing.T) (client.Client, []byte) {
			ca := newTestCA(t)
			der, err := x509.MarshalECPrivateKey(ca.key.(*ecdsa.PrivateKey))
			if err != nil {
				t.Fatal(err)
			}
			key := pemBlock("EC PRIVATE KEY", der)
			c := fake.NewClientBuilder().WithObjects(caSecret(map[string][]byte{"ca.crt": ca.certPEM(), "ca.key": key})).Build()
			return c, ca.certPEM()
		},
	}, {
		name: "adopts the CA of a replica that created the Secret between our read and our create",
		setup: func(t *testing.T) (client.Client, []byte) {
			other := newTestCA(t)
			var raced atomic.Bool
			c := interceptor.NewClient(fake.NewClientBuilder().Build(), interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					if raced.CompareAndSwap(false, true) {
						theirs := caSecret(map[string][]byte{"ca.crt": other.certPEM(), "ca.key": other.keyPEM(t)})
						if err := c.Create(ctx, theirs); err != nil {
							return err
						}
					}
					return c.Create(ctx, obj, opts...)
				},
			})
			return c, other.certPEM()
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, want := tc.setup(t)
			a := servingcert.NewAuthority(c, caNamespace, caName, testHosts, servingcert.AuthorityOptions{})
			start(t, a)

			s := getSecret(t, c)
			if s.Type != corev1.SecretTypeOpaque {
				t.Errorf("Secret type %q, want Opaque", s.Type)
			}
			if len(s.Data["ca.key"]) == 0 {
				t.Error("Secret has no ca.key")
			}
			if _, ok := s.Data["ca-previous.crt"]; ok {
				t.Error("Secret has ca-previous.crt before any rotation")
			}
			if want == nil {
				want = s.Data["ca.crt"]
			}
			if got := a.CABundle(); !bytes.Equal(got, want) {
				t.Errorf("CABundle:\n%s\nwant:\n%s", got, want)
			}
			if !bytes.Equal(s.Data["ca.crt"], want) {
				t.Errorf("Secret ca.crt:\n%s\nwant:\n%s", s.Data["ca.crt"], want)
			}
			if err := verify(leaf(t, a), pool(t, want), testHosts[0], time.Now()); err != nil {
				t.Errorf("serving certificate does not verify against the CA: %v", err)
			}
		})
	}
}

func TestAuthorityLeavesMalformedSecretAlone(t *testing.T) {
	cases := []struct {
		name string
		data map[string][]byte
	}{
		{name: "no key", data: map[string][]byte{"ca.crt": newTestCA(t).certPEM()}},
		{name: "key of another CA", data: map[string][]byte{"ca.crt": newTestCA(t).certPEM(), "ca.key": newTestCA(t).keyPEM(t)}},
		{name: "not PEM", data: map[string][]byte{"ca.crt": []byte("garbage"), "ca.key": []byte("garbage")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var gets atomic.Int32
			c := interceptor.NewClient(fake.NewClientBuilder().WithObjects(caSecret(tc.data)).Build(), interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					gets.Add(1)
					return c.Get(ctx, key, obj, opts...)
				},
			})
			before := getSecret(t, c)
			a := servingcert.NewAuthority(c, caNamespace, caName, testHosts, servingcert.AuthorityOptions{Resync: time.Millisecond})
			done := make(chan error, 1)
			go func() { done <- a.Start(t.Context()) }()
			t.Cleanup(func() { <-done })

			n := gets.Load()
			eventually(t, "the authority has retried", func() bool { return gets.Load() >= n+3 })
			if a.Ready() {
				t.Error("Ready with a malformed CA Secret")
			}
			if _, err := a.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
				t.Error("GetCertificate succeeded with a malformed CA Secret")
			}
			if after := getSecret(t, c); after.ResourceVersion != before.ResourceVersion {
				t.Errorf("Secret was rewritten: resourceVersion %s -> %s", before.ResourceVersion, after.ResourceVersion)
			}
		})
	}
}

func TestAuthorityServingCertificate(t *testing.T) {
	hosts := []string{"gatehouse-webhook.gatehouse-system.svc", "hub.example.com", "127.0.0.1", "::1"}
	a := servingcert.NewAuthority(fake.NewClientBuilder().Build(), caNamespace, caName, hosts, servingcert.AuthorityOptions{})
	start(t, a)
	cert := leaf(t, a)
	roots := pool(t, a.CABundle())

	cases := []struct {
		host    string
		wantErr bool
	}{
		{host: "gatehouse-webhook.gatehouse-system.svc"},
		{host: "hub.example.com"},
		{host: "127.0.0.1"},
		{host: "::1"},
		{host: "other.example.com", wantErr: true},
		{host: "gatehouse-webhook", wantErr: true},
		{host: "10.0.0.1", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.host, func(t *testing.T) {
			err := verify(cert, roots, tc.host, time.Now())
			if (err != nil) != tc.wantErr {
				t.Errorf("verify for %s: %v, want error %v", tc.host, err, tc.wantErr)
			}
		})
	}
	t.Run("ECDSA P-256 key", func(t *testing.T) {
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("public key %T, want ECDSA P-256", cert.PublicKey)
		}
	})
}

// TestAuthorityLifecycle walks one Authority through renewals, a CA
// rotation and the previous CA's expiry, one step after another.
func TestAuthorityLifecycle(t *testing.T) {
	clk := newClock()
	t0 := clk.Now()
	c := fake.NewClientBuilder().Build()
	a := servingcert.NewAuthority(c, caNamespace, caName, testHosts, servingcert.AuthorityOptions{
		CAValidity:      300 * time.Hour,
		ServingValidity: 30 * time.Hour,
		Resync:          time.Millisecond,
		Now:             clk.Now,
	})
	start(t, a)
	changed(t, a)
	ca0 := getSecret(t, c).Data["ca.crt"]
	prevLeaf := leaf(t, a)
	var oldCALeaf *x509.Certificate // the last leaf the first CA signed

	steps := []struct {
		name string
		at   time.Duration
		// wantBundle is the CAs, newest first: "ca0" is the first CA, "new"
		// the one rotation created.
		wantBundle  []string
		wantNewLeaf bool
		// wantSigner is the CA that signed the serving certificate.
		wantSigner string
	}{{
		name: "serving certificate renewed after two thirds of its life", at: 21 * time.Hour,
		wantBundle: []string{"ca0"}, wantNewLeaf: true, wantSigner: "ca0",
	}, {
		name: "serving certificate renewed after it expired", at: 199 * time.Hour,
		wantBundle: []string{"ca0"}, wantNewLeaf: true, wantSigner: "ca0",
	}, {
		name: "CA rotated after two thirds of its life, old one kept", at: 201 * time.Hour,
		wantBundle: []string{"new", "ca0"}, wantSigner: "ca0",
	}, {
		name: "serving certificate renewed under the new CA", at: 220 * time.Hour,
		wantBundle: []string{"new", "ca0"}, wantNewLeaf: true, wantSigner: "new",
	}, {
		name: "previous CA dropped once expired", at: 301 * time.Hour,
		wantBundle: []string{"new"}, wantNewLeaf: true, wantSigner: "new",
	}}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			drain(a)
			now := t0.Add(st.at)
			clk.Set(now)
			changed(t, a)

			s := getSecret(t, c)
			byName := map[string][]byte{"ca0": ca0, "new": s.Data["ca.crt"]}
			var want []byte
			for _, n := range st.wantBundle {
				want = append(want, byName[n]...)
			}
			if got := a.CABundle(); !bytes.Equal(got, want) {
				t.Errorf("CABundle holds %d certificates, want %v", bytes.Count(got, []byte("BEGIN CERTIFICATE")), st.wantBundle)
			}
			if len(st.wantBundle) == 2 && !bytes.Equal(s.Data["ca-previous.crt"], ca0) {
				t.Error("Secret ca-previous.crt is not the first CA")
			}

			cur := leaf(t, a)
			if gotNew := cur.SerialNumber.Cmp(prevLeaf.SerialNumber) != 0; gotNew != st.wantNewLeaf {
				t.Errorf("new serving certificate: %v, want %v", gotNew, st.wantNewLeaf)
			}
			if err := verify(cur, pool(t, a.CABundle()), "127.0.0.1", now); err != nil {
				t.Errorf("serving certificate does not verify against CABundle: %v", err)
			}
			for name, ca := range byName {
				signed := verify(cur, pool(t, ca), "127.0.0.1", now) == nil
				if want := name == st.wantSigner || bytes.Equal(ca, byName[st.wantSigner]); signed != want {
					t.Errorf("serving certificate verifies against CA %s alone: %v, want %v", name, signed, want)
				}
			}
			if oldCALeaf != nil && len(st.wantBundle) == 2 {
				if err := verify(oldCALeaf, pool(t, a.CABundle()), "127.0.0.1", now); err != nil {
					t.Errorf("certificate the previous CA signed no longer verifies: %v", err)
				}
			}
			if st.wantSigner == "ca0" {
				oldCALeaf = cur
			}
			prevLeaf = cur
		})
	}
}

func TestAuthorityReplicasAgree(t *testing.T) {
	opts := func(clk *clock) servingcert.AuthorityOptions {
		return servingcert.AuthorityOptions{CAValidity: 300 * time.Hour, ServingValidity: 30 * time.Hour, Resync: time.Millisecond, Now: clk.Now}
	}
	cases := []struct {
		name string
		// act runs replicas against c and returns them once they agree.
		act func(t *testing.T, c client.Client, clk *clock) []*servingcert.Authority
		// wantPrevious says whether the Secret ends up with a previous CA.
		wantPrevious bool
	}{{
		name: "replicas starting together on an empty cluster create one CA",
		act: func(t *testing.T, c client.Client, clk *clock) []*servingcert.Authority {
			var as []*servingcert.Authority
			for range 4 {
				a := servingcert.NewAuthority(c, caNamespace, caName, testHosts, opts(clk))
				run(t, a)
				as = append(as, a)
			}
			for _, a := range as {
				eventually(t, "every replica is ready", a.Ready)
			}
			return as
		},
	}, {
		name: "replicas due together rotate the CA once",
		act: func(t *testing.T, c client.Client, clk *clock) []*servingcert.Authority {
			var as []*servingcert.Authority
			for range 4 {
				a := servingcert.NewAuthority(c, caNamespace, caName, testHosts, opts(clk))
				start(t, a)
				as = append(as, a)
			}
			before := getSecret(t, c).Data["ca.crt"]
			clk.Set(clk.Now().Add(201 * time.Hour))
			eventually(t, "every replica has rotated", func() bool {
				for _, a := range as {
					if bytes.Count(a.CABundle(), []byte("BEGIN CERTIFICATE")) != 2 {
						return false
					}
				}
				return true
			})
			if got := getSecret(t, c).Data["ca-previous.crt"]; !bytes.Equal(got, before) {
				t.Error("ca-previous.crt is not the CA from before the rotation: the CA was rotated more than once")
			}
			return as
		},
		wantPrevious: true,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().Build()
			as := tc.act(t, c, newClock())
			s := getSecret(t, c)
			if _, ok := s.Data["ca-previous.crt"]; ok != tc.wantPrevious {
				t.Errorf("Secret has ca-previous.crt: %v, want %v", ok, tc.wantPrevious)
			}
			eventually(t, "all replicas serve the Secret's CAs", func() bool {
				for _, a := range as {
					if !bytes.Equal(a.CABundle(), append(bytes.Clone(s.Data["ca.crt"]), s.Data["ca-previous.crt"]...)) {
						return false
					}
				}
				return true
			})
		})
	}
}

func TestAuthorityAdoptsRotationByAnotherReplica(t *testing.T) {
	clk := newClock()
	other := newTestCA(t)
	var raced atomic.Bool
	c := interceptor.NewClient(fake.NewClientBuilder().Build(), interceptor.Funcs{
		// Another replica writes its rotation between our read and write.
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if raced.CompareAndSwap(false, true) {
				var theirs corev1.Secret
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), &theirs); err != nil {
					return err
				}
				theirs.Data["ca-previous.crt"] = theirs.Data["ca.crt"]
				theirs.Data["ca.crt"] = other.certPEM()
				theirs.Data["ca.key"] = other.keyPEM(t)
				if err := c.Update(ctx, &theirs); err != nil {
					return err
				}
			}
			return c.Update(ctx, obj, opts...)
		},
	})
	a := servingcert.NewAuthority(c, caNamespace, caName, testHosts, servingcert.AuthorityOptions{
		CAValidity: 300 * time.Hour, ServingValidity: 30 * time.Hour, Resync: time.Millisecond, Now: clk.Now,
	})
	start(t, a)
	ca0 := a.CABundle()
	clk.Set(clk.Now().Add(201 * time.Hour))

	want := append(other.certPEM(), ca0...)
	eventually(t, "the authority serves the other replica's CA", func() bool { return bytes.Equal(a.CABundle(), want) })
	if !raced.Load() {
		t.Fatal("the authority never tried to rotate")
	}
	if got := getSecret(t, c).Data["ca.crt"]; !bytes.Equal(got, other.certPEM()) {
		t.Error("the other replica's CA was overwritten")
	}
}

func TestAuthorityTLSHandshake(t *testing.T) {
	a := servingcert.NewAuthority(fake.NewClientBuilder().Build(), caNamespace, caName, []string{"127.0.0.1"}, servingcert.AuthorityOptions{})
	start(t, a)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "admitted")
	}))
	// httptest's StartTLS would add its own certificate, which Go prefers
	// to GetCertificate when the client sends no server name, as with an
	// IP address; so serve TLS on the listener directly.
	srv.Listener = tls.NewListener(srv.Listener, &tls.Config{GetCertificate: a.GetCertificate})
	srv.Start()
	defer srv.Close()
	url := "https://" + srv.Listener.Addr().String()

	cases := []struct {
		name    string
		roots   *x509.CertPool
		wantErr bool
	}{
		{name: "client trusting only the CA bundle", roots: pool(t, a.CABundle())},
		{name: "client trusting another CA", roots: pool(t, newTestCA(t).certPEM()), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.roots}}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get(url)
			if (err != nil) != tc.wantErr {
				t.Fatalf("GET %s: %v, want error %v", url, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if body, _ := io.ReadAll(resp.Body); string(body) != "admitted" {
				t.Errorf("body %q", body)
			}
		})
	}
}

func TestAuthorityNotReadyBeforeStart(t *testing.T) {
	a := servingcert.NewAuthority(fake.NewClientBuilder().Build(), caNamespace, caName, testHosts, servingcert.AuthorityOptions{})
	if a.Ready() {
		t.Error("Ready before Start")
	}
	if _, err := a.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
		t.Error("GetCertificate succeeded before Start")
	}
	if a.CABundle() != nil {
		t.Error("CABundle before Start")
	}
}

func TestAuthorityRejectsMissingHosts(t *testing.T) {
	cases := []struct {
		name  string
		hosts []string
	}{
		{name: "no hosts"},
		{name: "empty host", hosts: []string{"hub.example.com", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := servingcert.NewAuthority(fake.NewClientBuilder().Build(), caNamespace, caName, tc.hosts, servingcert.AuthorityOptions{})
			if err := a.Start(t.Context()); err == nil {
				t.Error("Start succeeded")
			}
		})
	}
}
