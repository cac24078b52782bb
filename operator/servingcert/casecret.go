package servingcert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Keys of the CA Secret.
const (
	KeyCACert         = "ca.crt"
	KeyCAKey          = "ca.key"
	KeyPreviousCACert = "ca-previous.crt"
)

// maxRaces bounds how often one sync re-reads the Secret after losing a
// race to another replica before it gives up until the next retry.
const maxRaces = 5

// errRaced means another replica wrote the Secret between our read and our
// write; the answer is to read it again.
var errRaced = errors.New("CA Secret changed by another replica")

// caSet is what the CA Secret holds.
type caSet struct {
	current keyPair
	// previous is the CA current replaced, nil if none.
	previous *x509.Certificate
}

// trusted is the CAs clients must trust at now, newest first.
func (s caSet) trusted(now time.Time) []*x509.Certificate {
	cas := []*x509.Certificate{s.current.cert}
	if s.previous != nil && now.Before(s.previous.NotAfter) {
		cas = append(cas, s.previous)
	}
	return cas
}

// syncSecret returns the CA from the Secret, creating or rotating it as
// due. It never overwrites a CA it has not read: a write that loses a race
// is answered by reading the winner's.
func (a *Authority) syncSecret(ctx context.Context, now time.Time) (caSet, error) {
	for range maxRaces {
		cas, err := a.syncSecretOnce(ctx, now)
		if !errors.Is(err, errRaced) {
			return cas, err
		}
	}
	return caSet{}, fmt.Errorf("CA Secret %s changed under every one of %d attempts to read and write it", a.secret, maxRaces)
}

func (a *Authority) syncSecretOnce(ctx context.Context, now time.Time) (caSet, error) {
	var s corev1.Secret
	err := a.client.Get(ctx, a.secret, &s)
	if apierrors.IsNotFound(err) {
		return a.createSecret(ctx, now)
	}
	if err != nil {
		return caSet{}, fmt.Errorf("reading CA Secret %s: %w", a.secret, err)
	}
	cas, err := parseSecret(&s)
	if err != nil {
		return caSet{}, fmt.Errorf("CA Secret %s: %w; repair it, or delete it to have a new CA created (members then need the new caBundle)", a.secret, err)
	}
	if now.Before(dueAt(cas.current.cert)) {
		return cas, nil
	}
	return a.rotate(ctx, &s, cas, now)
}

func (a *Authority) createSecret(ctx context.Context, now time.Time) (caSet, error) {
	ca, err := newCA(a.secret.Name, now, a.opts.CAValidity)
	if err != nil {
		return caSet{}, fmt.Errorf("creating CA: %w", err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.secret.Namespace, Name: a.secret.Name},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	if err := putCA(s, ca, nil); err != nil {
		return caSet{}, err
	}
	err = a.client.Create(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		a.opts.Log.Info("another replica created the CA first; using theirs", "secret", a.secret)
		return caSet{}, errRaced
	}
	if err != nil {
		return caSet{}, fmt.Errorf("creating CA Secret %s: %w", a.secret, err)
	}
	a.opts.Log.Info("created CA", append(describe(ca.cert), "secret", a.secret)...)
	return caSet{current: ca}, nil
}

// rotate replaces the CA of s, which was read at its current
// resourceVersion, keeping the old CA's certificate as the previous one.
func (a *Authority) rotate(ctx context.Context, s *corev1.Secret, old caSet, now time.Time) (caSet, error) {
	ca, err := newCA(a.secret.Name, now, a.opts.CAValidity)
	if err != nil {
		return caSet{}, fmt.Errorf("creating CA: %w", err)
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if err := putCA(s, ca, old.current.cert); err != nil {
		return caSet{}, err
	}
	err = a.client.Update(ctx, s)
	if apierrors.IsConflict(err) {
		a.opts.Log.Info("another replica changed the CA Secret during rotation; re-reading", "secret", a.secret)
		return caSet{}, errRaced
	}
	if err != nil {
		return caSet{}, fmt.Errorf("writing rotated CA to Secret %s: %w", a.secret, err)
	}
	a.opts.Log.Info("rotated CA", append(describe(ca.cert), "secret", a.secret, "previousSerial", old.current.cert.SerialNumber.Text(16))...)
	return caSet{current: ca, previous: old.current.cert}, nil
}

// putCA writes ca, and previous if any, into s's data, leaving other keys.
func putCA(s *corev1.Secret, ca keyPair, previous *x509.Certificate) error {
	key, err := encodeKey(ca.key)
	if err != nil {
		return fmt.Errorf("encoding CA key: %w", err)
	}
	s.Data[KeyCACert] = encodeCert(ca.cert)
	s.Data[KeyCAKey] = key
	if previous != nil {
		s.Data[KeyPreviousCACert] = encodeCert(previous)
	} else {
		delete(s.Data, KeyPreviousCACert)
	}
	return nil
}

func parseSecret(s *corev1.Secret) (caSet, error) {
	current, err := parseKeyPair(s.Data[KeyCACert], s.Data[KeyCAKey])
	if err != nil {
		return caSet{}, fmt.Errorf("%s/%s: %w", KeyCACert, KeyCAKey, err)
	}
	if !current.cert.IsCA {
		return caSet{}, fmt.Errorf("%s is not a CA certificate", KeyCACert)
	}
	cas := caSet{current: current}
	if data, ok := s.Data[KeyPreviousCACert]; ok {
		prev, err := parseCerts(data)
		if err != nil {
			return caSet{}, fmt.Errorf("%s: %w", KeyPreviousCACert, err)
		}
		cas.previous = prev[0]
	}
	return cas, nil
}
