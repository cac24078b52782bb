package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// writeKeyPair writes a self-signed ECDSA P-256 certificate for 127.0.0.1
// and localhost into dir, in the forms the three proxies read, and returns
// the files and a pool that trusts the certificate (for the routing
// checks).
func writeKeyPair(dir string) (*tlsFiles, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "bench-proxy"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})

	// Our proxy reads key pairs as directories holding tls.crt and tls.key,
	// named by their path below --key-pairs.
	tf := &tlsFiles{keyPairs: filepath.Join(dir, "key-pairs")}
	kpDir := filepath.Join(tf.keyPairs, filepath.FromSlash(keyPairName))
	tf.cert, tf.key = filepath.Join(kpDir, "tls.crt"), filepath.Join(kpDir, "tls.key")
	tf.combined = filepath.Join(dir, "combined.pem")
	if err := os.MkdirAll(kpDir, 0o755); err != nil {
		return nil, nil, err
	}
	for path, data := range map[string][]byte{
		tf.cert:     certPEM,
		tf.key:      keyPEM,
		tf.combined: append(append([]byte{}, certPEM...), keyPEM...),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, nil, err
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tf, pool, nil
}
