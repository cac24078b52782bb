package routetable_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

func TestParseCertificates(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyDER, _ := x509.MarshalECPrivateKey(key)
	other := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	broken := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	tests := []struct {
		name    string
		data    string
		certs   int
		noCerts bool
	}{
		{name: "two certificates, with text and another block between", data: "the CAs\n" + cert + other + cert, certs: 2},
		{name: "text only", data: "not a certificate", noCerts: true},
		{name: "another block only", data: other, noCerts: true},
		{name: "empty", data: "", noCerts: true},
		{name: "a certificate that does not parse", data: cert + broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := routetable.ParseCertificates([]byte(tt.data))
			switch {
			case tt.certs > 0:
				if err != nil || len(certs) != tt.certs {
					t.Errorf("got %d certificates, %v; want %d", len(certs), err, tt.certs)
				}
			case tt.noCerts:
				if !errors.Is(err, routetable.ErrNoCertificate) {
					t.Errorf("got %d certificates, %v; want ErrNoCertificate", len(certs), err)
				}
			default:
				if err == nil || errors.Is(err, routetable.ErrNoCertificate) {
					t.Errorf("got %d certificates, %v; want the parse error", len(certs), err)
				}
			}
		})
	}
}
