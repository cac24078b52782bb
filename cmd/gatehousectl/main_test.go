package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		argv0  string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "help lists the commands", args: []string{"-h"}, code: exitOK, stdout: "  policy test "},
		{name: "no command is a usage error", code: exitUsage, stdout: "Commands:"},
		{name: "help COMMAND", args: []string{"help", "join"}, code: exitOK, stdout: "--member-kubeconfig"},
		{name: "command help has examples", args: []string{"migrate", "ingress", "-h"}, code: exitOK, stdout: "Examples:\n  gatehousectl migrate ingress -n shop"},
		{name: "as a kubectl plugin", argv0: "/usr/local/bin/kubectl-gatehouse", args: []string{"leave", "-h"}, code: exitOK, stdout: "kubectl gatehouse leave [flags] CLUSTER"},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage, stderr: `unknown command "frobnicate"`},
		{name: "unknown flag", args: []string{"join", "x", "--member-kubeconfig", "f", "--colour"}, code: exitUsage, stderr: "flag provided but not defined: -colour"},
		{name: "cluster must be a DNS-1123 label", args: []string{"join", "Prod_EU", "--member-context", "x"}, code: exitUsage, stderr: `CLUSTER "Prod_EU"`},
		{name: "join needs the member", args: []string{"join", "edge-1"}, code: exitUsage, stderr: "--member-kubeconfig"},
		{name: "token too short", args: []string{"join", "edge-1", "--member-context", "x", "--token-duration", "1m"}, code: exitUsage, stderr: "at least 10m0s"},
		{name: "gateway as NAMESPACE/NAME", args: []string{"migrate", "ingress", "-f", "x", "--gateway", "shared"}, code: exitUsage, stderr: "NAMESPACE/NAME"},
		{name: "explain output format", args: []string{"explain", "route", "a/b", "-o", "yaml"}, code: exitUsage, stderr: `-o "yaml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv0 := tc.argv0
			if argv0 == "" {
				argv0 = "gatehousectl"
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{argv0}, tc.args...), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}
}

// TestJoinDryRun prints the objects without contacting a cluster: the
// member's server is not reachable.
func TestJoinDryRun(t *testing.T) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["m"] = &clientcmdapi.Cluster{Server: "https://member.invalid:6443", CertificateAuthorityData: []byte("-----BEGIN CERTIFICATE-----\n")}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: "admin-token"}
	cfg.Contexts["m"] = &clientcmdapi.Context{Cluster: "m", AuthInfo: "admin"}
	cfg.CurrentContext = "m"
	path := filepath.Join(t.TempDir(), "member.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := gatehousectl(t, "--kubeconfig", filepath.Join(t.TempDir(), "absent"), "join", "edge-1", "--member-kubeconfig", path,
		"--server", "https://10.20.0.5:6443", "--labels", "env=prod", "--dry-run")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"kind: Namespace", "kind: ServiceAccount", "kind: ClusterRole\n", "kind: ClusterRoleBinding",
		"- validatingwebhookconfigurations", "- gatehouse-routes", "- tokenreviews",
		"name: edge-1\n  namespace: gatehouse-system",
		"sigs.k8s.io/multicluster-runtime-kubeconfig: \"true\"", "env: prod", "gatehouse.dev/token-expires:",
		"server: https://10.20.0.5:6443", "token: <minted by join>",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "admin-token") {
		t.Errorf("dry run shows the member admin's token:\n%s", stdout)
	}
}

func TestMigrateIngressFromFiles(t *testing.T) {
	file := filepath.Join("testdata", "migrate", "shop.yaml")
	code, stdout, stderr := gatehousectl(t, "migrate", "ingress", "-f", file, "-n", "shop", "--gateway", "infra/shared", "--section-name", "https")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"kind: HTTPRoute", "name: shop\n  namespace: shop", "sectionName: https", "port: 8080"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "blog") || strings.Contains(stdout, "#") {
		t.Errorf("stdout has another namespace's route or the notes:\n%s", stdout)
	}
	if !strings.Contains(stderr, "note: shop/shop: metadata.annotations[nginx.ingress.kubernetes.io/server-snippet]") {
		t.Errorf("stderr lacks the note on server-snippet:\n%s", stderr)
	}
}

func TestMain(m *testing.M) {
	// Tests must not read the developer's kubeconfig.
	os.Setenv("KUBECONFIG", filepath.Join(os.TempDir(), "gatehousectl-test-no-kubeconfig"))
	os.Exit(m.Run())
}
