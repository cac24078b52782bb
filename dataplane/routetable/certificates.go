package routetable

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
)

// ErrNoCertificate is ParseCertificates' error for PEM data without a
// CERTIFICATE block.
var ErrNoCertificate = errors.New("no PEM CERTIFICATE block")

// ParseCertificates reads every CERTIFICATE block of PEM data, skipping
// blocks of other types; it fails on a certificate that does not parse and
// on data with none. It is how a CA bundle the table carries
// (ClientValidation.ca_pem) is read: translate checks bundles with it and
// the proxy loads them with it, so a proxy never refuses a bundle the hub
// accepted.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return certs, nil
}
