package adversarial

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client speaks raw HTTP/2 frames to the proxy over TLS (ALPN h2) and
// records what the proxy sends back.
type h2Client struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	ack *http2.Framer
	mu  sync.Mutex
	// what the proxy sent
	goAway    *http2.GoAwayFrame
	resets    map[http2.ErrCode]int
	responses int
	statuses  []string
	// maxStreams is the proxy's SETTINGS_MAX_CONCURRENT_STREAMS, 0 until
	// it came.
	maxStreams uint32
	closed     chan struct{}
}

// dialH2 connects and sends the preface and SETTINGS; with read set, a
// goroutine reads and records the proxy's frames.
func dialH2(t *testing.T, port uint32, read bool) *h2Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	tc, err := tls.DialWithDialer(d, "tcp", listenerAddr(port), &tls.Config{ServerName: "a.example.com", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	t.Cleanup(func() { tc.Close() })
	// The test's frames and the reader's SETTINGS ACK go through separate
	// framers onto one writer that keeps frames whole.
	w := &lockedWriter{w: tc}
	h := &h2Client{t: t, c: tc, fr: http2.NewFramer(w, tc), ack: http2.NewFramer(w, nil), resets: map[http2.ErrCode]int{}, closed: make(chan struct{})}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	if _, err := io.WriteString(tc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if read {
		go h.read()
	}
	return h
}

// read records the proxy's frames until the connection ends.
func (h *h2Client) read() {
	defer close(h.closed)
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return
		}
		h.mu.Lock()
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			h.goAway = f
		case *http2.RSTStreamFrame:
			h.resets[f.ErrCode]++
		case *http2.MetaHeadersFrame:
			h.responses++
			h.statuses = append(h.statuses, f.PseudoValue("status"))
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
					h.maxStreams = v
				}
				_ = h.ack.WriteSettingsAck()
			}
		}
		h.mu.Unlock()
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// headerBlock encodes a GET for path on a.example.com, plus extra fields.
func headerBlock(path string, extra ...hpack.HeaderField) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "a.example.com"}, {Name: ":path", Value: path},
	}, extra...) {
		_ = enc.WriteField(f)
	}
	return buf.Bytes()
}

// closedWithin reports whether the proxy ended the connection (GOAWAY or
// close) within d.
func (h *h2Client) closedWithin(d time.Duration) bool {
	deadline := time.After(d)
	for {
		h.mu.Lock()
		away := h.goAway != nil
		h.mu.Unlock()
		if away {
			return true
		}
		select {
		case <-h.closed:
			return true
		case <-deadline:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// neverServed waits for the proxy to answer or end the connection and
// fails the test if what was sent got a 200.
func (h *h2Client) neverServed(t *testing.T, what string) {
	t.Helper()
	h.closedWithin(3 * time.Second)
	h.mu.Lock()
	statuses := append([]string(nil), h.statuses...)
	h.mu.Unlock()
	for _, s := range statuses {
		if s == "200" {
			t.Fatalf("%s was served (%s)", what, h.summary())
		}
	}
}

func (h *h2Client) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s strings.Builder
	if h.goAway != nil {
		s.WriteString("GOAWAY " + h.goAway.ErrCode.String() + "; ")
	}
	for code, n := range h.resets {
		s.WriteString(code.String() + " resets: " + strconv.Itoa(n) + "; ")
	}
	s.WriteString("responses: " + strconv.Itoa(h.responses) + " " + strings.Join(first(h.statuses, 5), ","))
	return s.String()
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TestHTTP2: HTTP/2 abuse. Each attack runs on one connection; the proxy
// must end that connection (GOAWAY or close) or refuse the abuse, and keep
// answering another client meanwhile.
func TestHTTP2(t *testing.T) {
	b := newBed(t)
	stillServes := func(t *testing.T) {
		t.Helper()
		done := make(chan struct{})
		var code int
		go func() {
			defer close(done)
			c, err := net.DialTimeout("tcp", listenerAddr(b.port), 5*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c, "GET /public HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				code = resp.StatusCode
			}
		}()
		<-done
		if code != http.StatusOK {
			t.Fatalf("another client got %d during the attack, want 200", code)
		}
	}

	runCases(t, "http2", []adversarialCase{
		{"rapid-reset", "CVE-2023-44487; Envoy premature-reset limit: the abuser's connection is ended", func(t *testing.T) {
			h := dialH2(t, b.tlsPort, true)
			block := headerBlock("/public")
			var err error
			for id := uint32(1); id < 2*20000 && err == nil; id += 2 {
				err = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
				if err == nil {
					err = h.fr.WriteRSTStream(id, http2.ErrCodeCancel)
				}
			}
			stillServes(t)
			if !h.closedWithin(10 * time.Second) {
				t.Fatalf("the connection that reset 20,000 streams is still open (%s)", h.summary())
			}
		}},
		{"continuation-flood", "CVE-2024-27316 / CVE-2023-45288: endless CONTINUATION ends the connection", func(t *testing.T) {
			h := dialH2(t, b.tlsPort, true)
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/public"), EndStream: true}); err != nil {
				t.Fatal(err)
			}
			chunk := headerBlock("/x", hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("a", 16000)})[0:]
			sent := 0
			var err error
			for sent < 64<<20 && err == nil {
				h.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				err = h.fr.WriteContinuation(1, false, chunk)
				sent += len(chunk)
			}
			if !h.closedWithin(10 * time.Second) {
				t.Fatalf("the connection is open after %d MiB of CONTINUATION (%s)", sent>>20, h.summary())
			}
			stillServes(t)
		}},
		{"too-many-streams", "RFC 9113 §5.1.2: streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused", func(t *testing.T) {
			h := dialH2(t, b.tlsPort, true)
			block := headerBlock("/public")
			opened := 0
			for id := uint32(1); id < 2*2000; id += 2 {
				// Bodies never sent: each stream stays open.
				if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
					t.Logf("writing stream %d: %v", id, err)
					break
				}
				opened++
			}
			refused := eventually(10*time.Second, func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				return h.goAway != nil || h.resets[http2.ErrCodeRefusedStream]+h.resets[http2.ErrCodeProtocol] > 0
			})
			h.mu.Lock()
			allowed := h.maxStreams
			h.mu.Unlock()
			if !refused {
				t.Fatalf("%d concurrent streams were all accepted; the proxy announced %d (%s)", opened, allowed, h.summary())
			}
			stillServes(t)
		}},
		{"huge-header-list", "RFC 9113 §10.5.1: a header list over the limit is refused, never served", func(t *testing.T) {
			h := dialH2(t, b.tlsPort, true)
			var extra []hpack.HeaderField
			for i := 0; i < 256; i++ {
				extra = append(extra, hpack.HeaderField{Name: "x-big-" + strconv.Itoa(i), Value: strings.Repeat("b", 8000)})
			}
			block := headerBlock("/public", extra...)
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:16000], EndStream: true}); err != nil {
				t.Fatal(err)
			}
			rest := block[16000:]
			for len(rest) > 0 {
				n := min(len(rest), 16000)
				if err := h.fr.WriteContinuation(1, n == len(rest), rest[:n]); err != nil {
					break
				}
				rest = rest[n:]
			}
			h.neverServed(t, "a 2 MiB header list")
			stillServes(t)
		}},
		{"hpack-bomb", "RFC 7541 §7.3 / Envoy max_request_headers_kb: the decoded size counts, not the wire size", func(t *testing.T) {
			h := dialH2(t, b.tlsPort, true)
			var buf bytes.Buffer
			enc := hpack.NewEncoder(&buf)
			for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
				{Name: ":authority", Value: "a.example.com"}, {Name: ":path", Value: "/public"},
				{Name: "x-bomb", Value: strings.Repeat("c", 4000)}} {
				_ = enc.WriteField(f)
			}
			// Index 62 is the newest dynamic-table entry: x-bomb. One byte on
			// the wire, 4 KB decoded, repeated 4,000 times: 16 MB.
			buf.Write(bytes.Repeat([]byte{0x80 | 62}, 4000))
			block := buf.Bytes()
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
			h.neverServed(t, "a 16 MB decoded header list")
			stillServes(t)
		}},
		{"ping-flood", "CVE-2019-9512: PINGs without reading the answers end the connection", func(t *testing.T) {
			// Never read: the answers pile up in the proxy.
			h := dialH2(t, b.tlsPort, false)
			var err error
			sent := 0
			for ; sent < 1000000 && err == nil; sent++ {
				h.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				err = h.fr.WritePing(false, [8]byte{byte(sent)})
			}
			if err == nil {
				t.Fatalf("the connection took %d PINGs whose answers were never read", sent)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the proxy stopped reading after %d PINGs but kept the connection open", sent)
			}
			stillServes(t)
		}},
	})
}
