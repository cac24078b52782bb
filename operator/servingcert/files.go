package servingcert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Names of the files Files reads, as in a kubernetes.io/tls Secret that
// cert-manager writes.
const (
	FileCert = "tls.crt"
	FileKey  = "tls.key"
	FileCA   = "ca.crt"
)

// FilesOptions tune Files. The zero value means the defaults.
type FilesOptions struct {
	// Poll is how often the files are checked for changes; default 10 s.
	Poll time.Duration
}

// Files serves a certificate that something else issues and renews into a
// directory, such as a cert-manager Secret mounted into the hub's Pod.
type Files struct {
	dir     string
	log     *slog.Logger
	poll    time.Duration
	changed signal
	current atomic.Pointer[loaded]

	// seen is the digest of the files last tried, good or bad, so that a bad
	// set is reported once rather than at every poll. Owned by Start.
	seen [sha256.Size]byte
}

type loaded struct {
	cert   *tls.Certificate
	bundle []byte
}

// NewFiles loads tls.crt, tls.key and the optional ca.crt from dir, and
// fails if the key pair is missing or invalid, or ca.crt is present but
// not PEM certificates. opts, at most one, tunes polling; log may be nil.
//
// When ca.crt is absent or empty, as with issuers whose chain clients
// already trust (ACME, for instance), CABundle returns nil: the caller
// must then supply the bundle members trust some other way, or leave it
// unset so that members fall back to their system roots.
func NewFiles(dir string, log *slog.Logger, opts ...FilesOptions) (*Files, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Files{dir: dir, log: log, poll: 10 * time.Second, changed: newSignal()}
	for _, o := range opts {
		if o.Poll > 0 {
			f.poll = o.Poll
		}
	}
	contents, err := f.read()
	if err != nil {
		return nil, err
	}
	l, err := contents.load()
	if err != nil {
		return nil, fmt.Errorf("serving certificate in %s: %w", dir, err)
	}
	f.seen = contents.digest()
	f.current.Store(l)
	return f, nil
}

// NeedLeaderElection is false: every replica serves the webhook.
func (f *Files) NeedLeaderElection() bool { return false }

// GetCertificate returns the last good serving certificate.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.current.Load().cert, nil
}

// CABundle returns the certificates of ca.crt, or nil if there is none.
func (f *Files) CABundle() []byte { return bytes.Clone(f.current.Load().bundle) }

// Changed receives whenever the files change to a new valid set.
func (f *Files) Changed() <-chan struct{} { return f.changed }

// Start polls the files until ctx ends. A set that fails to load is logged
// and the last good one kept; it is tried again once the files change,
// which also covers a poll that read them halfway through an update.
func (f *Files) Start(ctx context.Context) error {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.reload()
		}
	}
}

func (f *Files) reload() {
	contents, err := f.read()
	if err != nil {
		f.log.Error("reading the serving certificate; keeping the previous one", "dir", f.dir, "err", err)
		return
	}
	digest := contents.digest()
	if digest == f.seen {
		return
	}
	f.seen = digest
	l, err := contents.load()
	if err != nil {
		f.log.Error("webhook serving certificate files changed but do not load; keeping the previous certificate", "dir", f.dir, "err", err)
		return
	}
	f.current.Store(l)
	f.changed.notify()
	f.log.Info("reloaded webhook serving certificate", append(describe(l.cert.Leaf), "dir", f.dir, "caBundle", l.bundle != nil)...)
}

// fileSet is the contents of the three files; nil for one that is absent.
type fileSet struct {
	cert, key, ca []byte
}

func (f *Files) read() (fileSet, error) {
	var s fileSet
	for name, dst := range map[string]*[]byte{FileCert: &s.cert, FileKey: &s.key, FileCA: &s.ca} {
		data, err := os.ReadFile(filepath.Join(f.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fileSet{}, err
		}
		*dst = data
	}
	return s, nil
}

// digest identifies the contents, telling an absent file from an empty one.
func (s fileSet) digest() [sha256.Size]byte {
	h := sha256.New()
	for _, data := range [][]byte{s.cert, s.key, s.ca} {
		if data == nil {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		fmt.Fprintf(h, "%d:", len(data))
		h.Write(data)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

func (s fileSet) load() (*loaded, error) {
	switch {
	case s.cert == nil:
		return nil, fmt.Errorf("%s is missing", FileCert)
	case s.key == nil:
		return nil, fmt.Errorf("%s is missing", FileKey)
	}
	cert, err := tls.X509KeyPair(s.cert, s.key)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", FileCert, FileKey, err)
	}
	if cert.Leaf == nil { // only when GODEBUG x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", FileCert, err)
		}
	}
	l := &loaded{cert: &cert}
	if len(bytes.TrimSpace(s.ca)) == 0 {
		return l, nil
	}
	cas, err := parseCerts(s.ca)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FileCA, err)
	}
	for _, ca := range cas {
		l.bundle = append(l.bundle, encodeCert(ca)...)
	}
	return l, nil
}
