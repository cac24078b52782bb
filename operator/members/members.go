// Package members holds the rules a member cluster's registration must
// follow before the hub works with it: its name, and the kubeconfig the hub
// will use. `gatehousectl join` checks them before it writes a member's
// Secret; the hub checks them again before it connects, because anyone who
// can write a Secret in the hub namespace can register a member.
package members

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ReservedName qualifies the key pairs the hub issues itself
// ("hub/<cluster>/<certificate>"); a member of that name could name a
// listener Secret ("hub/<namespace>/<secret>") whose key pair is one of them.
const ReservedName = "hub"

// certificatePrefix makes the hub namespace of a member's certificates
// (operator/certificates.Namespace); the test checks they agree.
const certificatePrefix = "gatehouse-"

// ValidateName checks a member's name, which is also the name of its
// Secret in hubNamespace. A DNS-1123 label has no dots, so no two names
// become one where the hub derives other names from it.
func ValidateName(name, hubNamespace string) error {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return fmt.Errorf("member name %q: %s; name members with lowercase letters, digits and '-' (e.g. %q), without dots",
			name, strings.Join(msgs, "; "), suggest(name))
	}
	if name == ReservedName {
		return fmt.Errorf("member name %q is reserved: the hub names the key pairs it issues %s/<cluster>/<certificate>; choose another name, e.g. %q",
			name, ReservedName, "hub-cluster")
	}
	if max := validation.DNS1123LabelMaxLength - len(certificatePrefix); len(name) > max {
		return fmt.Errorf("member name %q is longer than %d characters: the namespace of its certificates on the hub, %s<name>, must be a DNS-1123 label; choose a shorter name",
			name, max, certificatePrefix)
	}
	if certificatePrefix+name == hubNamespace {
		return fmt.Errorf("member name %q: the hub keeps a member's certificates in the namespace %s%s, which is the hub's own namespace; choose another name",
			name, certificatePrefix, name)
	}
	return nil
}

// CertificateNamespace is the hub namespace that holds a valid member's
// certificates (operator/certificates.Namespace; the test checks they agree).
func CertificateNamespace(name string) string { return certificatePrefix + name }

func suggest(name string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, name)
	s = strings.Trim(s, "-")
	if len(s) > validation.DNS1123LabelMaxLength {
		s = strings.TrimRight(s[:validation.DNS1123LabelMaxLength], "-")
	}
	if s == "" {
		return "member-1"
	}
	return s
}

// CheckServer refuses an API server address the hub would send its token
// to in clear.
func CheckServer(server string) error {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("server %q: the hub reaches members over https only (its token would cross the network in clear); give https://host:port", server)
	}
	return nil
}

// CheckConfig refuses a member kubeconfig that makes the hub use anything
// but the credentials written in it: a token file, client certificate or CA
// file (the hub's own files, such as its ServiceAccount token, sent to
// whatever server the kubeconfig names), an exec plugin (a command run in
// the hub) or an auth provider. Pass it in the kubeconfig provider's
// RESTOptions: it runs before the hub connects.
func CheckConfig(c *rest.Config) error {
	var errs []error
	if err := CheckServer(c.Host); err != nil {
		errs = append(errs, err)
	}
	bad := func(what, fix string) { errs = append(errs, fmt.Errorf("the kubeconfig uses %s; %s", what, fix)) }
	if c.ExecProvider != nil {
		bad("an exec plugin (users[].user.exec)", "the hub runs no commands for a member: write a token into the kubeconfig, as gatehousectl join does")
	}
	if c.AuthProvider != nil {
		bad("an auth provider (users[].user.auth-provider)", "write a token into the kubeconfig, as gatehousectl join does")
	}
	if c.BearerTokenFile != "" {
		bad("tokenFile "+c.BearerTokenFile, "the hub reads no files for a member: write the token itself into the kubeconfig")
	}
	for _, f := range []struct{ key, path string }{{"client-certificate", c.CertFile}, {"client-key", c.KeyFile}, {"certificate-authority", c.CAFile}} {
		if f.path != "" {
			bad(f.key+" "+f.path, "the hub reads no files for a member: use "+f.key+"-data")
		}
	}
	if c.Insecure {
		bad("insecure-skip-tls-verify", "the hub would send its token to whoever answers at the member's address: give the member's certificate-authority-data")
	}
	if c.Proxy != nil {
		bad("proxy-url", "the hub reaches members directly; remove proxy-url")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("refusing the member kubeconfig: %w", err)
	}
	return nil
}

// CheckKubeconfig applies CheckConfig's rules to a kubeconfig before it is
// turned into a client configuration, which already reads the files it
// names (a tokenFile of /dev/zero, or a FIFO, would hold the hub up). It
// only parses: it reads no file and runs nothing.
func CheckKubeconfig(data []byte) error {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return fmt.Errorf("the kubeconfig does not parse: %w", err)
	}
	var errs []error
	bad := func(where, what, fix string) {
		errs = append(errs, fmt.Errorf("%s uses %s; %s", where, what, fix))
	}
	for name, u := range cfg.AuthInfos {
		where := fmt.Sprintf("user %q", name)
		switch {
		case u.TokenFile != "":
			bad(where, "tokenFile "+u.TokenFile, "the hub reads no files for a member: write the token itself into the kubeconfig")
		case u.ClientCertificate != "" || u.ClientKey != "":
			bad(where, "client-certificate or client-key files", "use client-certificate-data and client-key-data")
		case u.Exec != nil:
			bad(where, "an exec plugin", "the hub runs no commands for a member: write a token into the kubeconfig, as gatehousectl join does")
		case u.AuthProvider != nil:
			bad(where, "an auth provider", "write a token into the kubeconfig, as gatehousectl join does")
		}
	}
	for name, c := range cfg.Clusters {
		if c.CertificateAuthority != "" {
			bad(fmt.Sprintf("cluster %q", name), "a certificate-authority file", "use certificate-authority-data")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("refusing the member kubeconfig: %w", err)
	}
	return nil
}

// SecretKey is the key of a member Secret that holds its kubeconfig (the
// kubeconfig provider's default).
const SecretKey = "kubeconfig"

// GuardSecrets is a cache transform for the hub namespace's Secrets: a
// member Secret whose kubeconfig CheckKubeconfig refuses reaches the
// kubeconfig provider without it, so the provider never parses it (and
// logs the member as unusable); the reason is logged here.
func GuardSecrets(log *slog.Logger) func(any) (any, error) {
	return func(obj any) (any, error) {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return obj, nil
		}
		data, ok := s.Data[SecretKey]
		if !ok {
			return obj, nil
		}
		if err := CheckKubeconfig(data); err != nil {
			log.Error("member Secret refused", "secret", s.Namespace+"/"+s.Name, "error", err)
			s.Data = maps.Clone(s.Data)
			delete(s.Data, SecretKey)
		}
		return s, nil
	}
}
