package kubelet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// listen opens the kubelet port on NodeIP with a self-signed certificate:
// kube-apiserver does not verify kubelet certificates unless it is given
// --kubelet-certificate-authority.
func (k *Kubelet) listen() (net.Listener, error) {
	cert, err := selfSignedCert(k.opts.NodeName, net.ParseIP(k.opts.NodeIP))
	if err != nil {
		return nil, fmt.Errorf("kubelet: creating the serving certificate: %w", err)
	}
	addr := net.JoinHostPort(k.opts.NodeIP, strconv.Itoa(k.opts.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kubelet: listening on %s: %w", addr, err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// serve answers GET /containerLogs/{namespace}/{pod}/{container}; every
// other request gets 404.
func (k *Kubelet) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.serveContainerLogs)
	k.server = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(k.opts.Log, "kubelet http: ", log.LstdFlags),
	}
	k.bg.Go(func() {
		if err := k.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			k.logf("serving the kubelet API: %v", err)
		}
	})
}

// serveContainerLogs writes a container's current output, filtered like
// the kubelet filters it. follow is accepted but returns what there is.
func (k *Kubelet) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	namespace, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	if len(validation.IsDNS1123Label(namespace)) > 0 || len(validation.IsDNS1123Subdomain(pod)) > 0 || len(validation.IsDNS1123Label(container)) > 0 {
		http.Error(w, "invalid namespace, pod or container name", http.StatusBadRequest)
		return
	}
	opts, err := parseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	path, err := k.containerLogPath(namespace, pod, container, opts.previous)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	entries, err := readLogFile(path)
	if err != nil {
		http.Error(w, "reading the log: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	if err := writeLogs(w, entries, opts); err != nil {
		k.logf("writing logs of %s/%s/%s: %v", namespace, pod, container, err)
	}
}

func selfSignedCert(name string, ip net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		IPAddresses:  []net.IP{ip},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
