package members_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatehouse-dev/gatehouse/operator/certificates"
	"github.com/gatehouse-dev/gatehouse/operator/members"
)

func TestValidateName(t *testing.T) {
	const hubNamespace = "gatehouse-system"
	for _, c := range []struct{ name, want string }{
		{"member-1", ""},
		{"hub", "reserved"},
		{"system", "hub's own namespace"},
		{"a.b", "without dots"},
		{"Member", "without dots"},
		{"", "without dots"},
		{strings.Repeat("a", 64), "without dots"},
		{strings.Repeat("a", 54), "longer than 53"},
	} {
		err := members.ValidateName(c.name, hubNamespace)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// TestValidNamesKeepCertificateNamespacesApart: two valid member names never
// share a certificate namespace, and none is the hub's own namespace; this
// holds for certificates.Namespace as it is, not a copy of it.
func TestValidNamesKeepCertificateNamespacesApart(t *testing.T) {
	const hubNamespace = "gatehouse-system"
	names := []string{"a-b", "a", "b", "system-1", "member-1", "member-10", strings.Repeat("x", 53), strings.Repeat("x", 52) + "y"}
	seen := map[string]string{}
	for _, n := range names {
		if err := members.ValidateName(n, hubNamespace); err != nil {
			t.Fatalf("%q: %v", n, err)
		}
		ns := certificates.Namespace(n)
		if got := members.CertificateNamespace(n); got != ns {
			t.Errorf("member %q: members.CertificateNamespace says %s, certificates.Namespace %s", n, got, ns)
		}
		if ns == hubNamespace {
			t.Errorf("member %q keeps its certificates in the hub namespace", n)
		}
		if other, ok := seen[ns]; ok {
			t.Errorf("members %q and %q share the certificate namespace %s", other, n, ns)
		}
		seen[ns] = n
	}
	// What sanitising would merge is refused instead.
	if certificates.Namespace("a.b") == certificates.Namespace("a-b") && members.ValidateName("a.b", hubNamespace) == nil {
		t.Error(`"a.b" and "a-b" share a certificate namespace and both are accepted`)
	}
	if certificates.Namespace("system") == hubNamespace && members.ValidateName("system", hubNamespace) == nil {
		t.Error(`"system" keeps its certificates in the hub namespace and is accepted`)
	}
}

// TestCheckConfigRefusesForeignCredentials: a forged member Secret cannot
// make the hub send its own files (its ServiceAccount token) or run a
// command; client-go reads such files while parsing, so they exist here.
func TestCheckConfigRefusesForeignCredentials(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("the-hubs-own-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const head = `apiVersion: v1
kind: Config
clusters:
- name: m
  cluster:
    server: %s
    certificate-authority-data: ""
contexts:
- name: m
  context: {cluster: m, user: u}
current-context: m
users:
- name: u
  user:
`
	for _, c := range []struct{ name, server, user, want string }{
		{"a token written in it", "https://10.0.0.1:6443", "    token: abc\n", ""},
		{"client certificates written in it", "https://10.0.0.1:6443", "    client-certificate-data: YQ==\n    client-key-data: YQ==\n", ""},
		{"the hub's own ServiceAccount token", "https://attacker.example:6443", "    tokenFile: " + token + "\n", "tokenFile"},
		{"a command run in the hub", "https://10.0.0.1:6443", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, id]\n      interactiveMode: Never\n", "exec plugin"},
		{"an auth provider", "https://10.0.0.1:6443", "    auth-provider:\n      name: oidc\n      config: {idp-issuer-url: https://idp.example}\n", "auth provider"},
		{"a CA file", "https://10.0.0.1:6443", "    token: abc\n", "certificate-authority " + ca},
		{"a plain-http server", "http://10.0.0.1:8080", "    token: abc\n", "https only"},
		{"TLS verification off", "https://10.0.0.1:6443", "    token: abc\n", "insecure-skip-tls-verify"},
		{"a proxy", "https://10.0.0.1:6443", "    token: abc\n", "proxy-url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := strings.Replace(head, "%s", c.server, 1)
			switch {
			case strings.HasPrefix(c.want, "certificate-authority"):
				h = strings.Replace(h, `certificate-authority-data: ""`, "certificate-authority: "+ca, 1)
			case c.want == "insecure-skip-tls-verify":
				h = strings.Replace(h, `certificate-authority-data: ""`, "insecure-skip-tls-verify: true", 1)
			case c.want == "proxy-url":
				h = strings.Replace(h, `certificate-authority-data: ""`, "proxy-url: http://proxy.example:3128", 1)
			}
			data := []byte(h + c.user)
			cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
			if err != nil {
				t.Fatalf("parsing: %v", err)
			}
			err = members.CheckConfig(cfg)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("CheckConfig() = %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// A member Secret naming a file or a command is refused before the
// kubeconfig is parsed into a client configuration, which would already
// read the file: here a FIFO nobody writes to, which would hold the hub
// up for good.
func TestMemberSecretsNamingFilesNeverReachTheProvider(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFO here:", err)
	}
	kubeconfig := func(user string) []byte {
		return []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster: {server: https://10.0.0.1:6443}\n" +
			"contexts:\n- name: m\n  context: {cluster: m, user: u}\ncurrent-context: m\nusers:\n- name: u\n  user:\n" + user)
	}
	guard := members.GuardSecrets(slog.New(slog.DiscardHandler))
	for _, c := range []struct {
		name, user string
		kept       bool
	}{
		{"a token", "    token: abc\n", true},
		{"a token file that never ends", "    tokenFile: " + fifo + "\n", false},
		{"a client key file", "    client-certificate: /etc/hub.crt\n    client-key: /etc/hub.key\n", false},
		{"an exec plugin", "    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, interactiveMode: Never}\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &corev1.Secret{Data: map[string][]byte{members.SecretKey: kubeconfig(c.user)}}
			done := make(chan any, 1)
			go func() { out, _ := guard(s); done <- out }()
			select {
			case out := <-done:
				_, kept := out.(*corev1.Secret).Data[members.SecretKey]
				if kept != c.kept {
					t.Fatalf("kubeconfig kept: %v, want %v", kept, c.kept)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("checking the Secret read the file it names")
			}
		})
	}
}
