package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse-dev/gatehouse/dataplane/proxy"
	rt "github.com/gatehouse-dev/gatehouse/dataplane/routetable"
)

// drainBackend answers / at once, holds /hold until release is closed or
// the request is cancelled, and echoes lines on /ws after an upgrade.
type drainBackend struct {
	srv     *httptest.Server
	release chan struct{}
	held    chan struct{} // receives when /hold starts
}

func newDrainBackend(t *testing.T) *drainBackend {
	b := &drainBackend{release: make(chan struct{}), held: make(chan struct{}, 16)}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hold":
			b.held <- struct{}{}
			select {
			case <-b.release:
				fmt.Fprint(w, "held")
			case <-r.Context().Done():
			}
		case "/ws":
			echoLines(w)
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	t.Cleanup(b.srv.Close)
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
	})
	return b
}

// echoLines switches to a WebSocket-like protocol that echoes each line
// as "echo:LINE" until the client closes.
func echoLines(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprint(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	buf.Flush()
	for {
		line, err := buf.ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprint(buf, "echo:"+line)
		buf.Flush()
	}
}

// startDraining serves one listener in front of b.
func startDraining(t *testing.T, b *drainBackend) (*proxy.Proxy, uint32) {
	t.Helper()
	port := freePort(t)
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1", DrainTimeout: time.Second})
	be := &rt.Backend{Name: "b", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{endpointOf(t, b.srv.URL)}}
	if err := p.Apply("v1", []*rt.RouteTable{oneRoute(port, be)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p, port
}

// drainAsync runs Drain and returns its result on the channel.
func drainAsync(p *proxy.Proxy, ctx context.Context, delay, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.Drain(ctx, delay, timeout) }()
	return done
}

// waitRefused waits until the port refuses connections.
func waitRefused(t *testing.T, port uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections after the drain delay")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stillRunning(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Drain returned (%v) while %s", err, what)
	default:
	}
}

func waitDrained(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return")
		return nil
	}
}

// During the drain delay readiness fails, the listener keeps accepting
// and serving, and every HTTP/1.1 response closes its connection.
func TestDrainDelayKeepsServingAndClosesKeepAlives(t *testing.T) {
	p, port := startDraining(t, newDrainBackend(t))
	var reused bool
	client := &http.Client{Transport: &http.Transport{}}
	get := func() *http.Response {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("during the drain delay: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.Close || !p.Ready() {
		t.Fatalf("before the drain: Connection: close %v, ready %v", resp.Close, p.Ready())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drainAsync(p, ctx, time.Minute, time.Second)
	for deadline := time.Now().Add(5 * time.Second); p.Ready() || !p.Draining(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("draining: ready %v, draining %v; want not ready as the drain starts", p.Ready(), p.Draining())
		}
	}
	resp := get()
	if resp.StatusCode != 200 || !resp.Close || !reused {
		t.Fatalf("on the kept-alive connection: %d, Connection: close %v, reused %v; want 200 over the old connection, closing it", resp.StatusCode, resp.Close, reused)
	}
	resp = get()
	if resp.StatusCode != 200 || !resp.Close || reused {
		t.Fatalf("a new connection during the delay: %d, Connection: close %v, reused %v; want 200 on a new connection, closing it", resp.StatusCode, resp.Close, reused)
	}
}

// During the drain delay an HTTP/2 connection gets a response, then
// GOAWAY: the client opens its next streams elsewhere.
func TestDrainDelaySendsGoAway(t *testing.T) {
	p, port := startDraining(t, newDrainBackend(t))
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	io.WriteString(c, http2.ClientPreface)
	fr.WriteSettings()

	if status, goAway := h2Get(t, fr, 1); status != "200" || goAway != nil {
		t.Fatalf("before the drain: status %s, GOAWAY %v", status, goAway)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drainAsync(p, ctx, time.Minute, time.Second)
	status, goAway := h2Get(t, fr, 3)
	if status != "200" {
		t.Fatalf("during the drain delay: status %s, want 200", status)
	}
	for goAway == nil {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY during the drain delay: %v", err)
		}
		goAway, _ = f.(*http2.GoAwayFrame)
	}
	if goAway.ErrCode != http2.ErrCodeNo || goAway.LastStreamID < 3 {
		t.Fatalf("GOAWAY %v last stream %d; want NO_ERROR covering stream 3", goAway.ErrCode, goAway.LastStreamID)
	}
}

// h2Get sends GET / on a stream and reads up to its end, returning the
// status and a GOAWAY read meanwhile.
func h2Get(t *testing.T, fr *http2.Framer, stream uint32) (status string, goAway *http2.GoAwayFrame) {
	t.Helper()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading stream %d: %v", stream, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			goAway = f
		case *http2.MetaHeadersFrame:
			if f.StreamID == stream {
				status = f.PseudoValue("status")
			}
			if f.StreamID == stream && f.StreamEnded() {
				return status, goAway
			}
		case *http2.DataFrame:
			if f.StreamID == stream && f.StreamEnded() {
				return status, goAway
			}
		}
	}
}

// After the delay the listener refuses connections, while a request in
// flight finishes and a new version is still acknowledged; then Drain
// returns without error.
func TestDrainLetsRequestsInFlightFinish(t *testing.T) {
	b := newDrainBackend(t)
	p, port := startDraining(t, b)
	type answer struct {
		code int
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/hold", port))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{resp.StatusCode, string(body), err}
	}()
	<-b.held
	done := drainAsync(p, context.Background(), 10*time.Millisecond, time.Minute)
	waitRefused(t, port)
	stillRunning(t, done, "a request was in flight")

	// The hub's pushes during the drain are acknowledged, not refused.
	be := &rt.Backend{Name: "b", Protocol: rt.AppProtocol_HTTP1, Endpoints: []*rt.Endpoint{endpointOf(t, b.srv.URL)}}
	if err := p.Apply("v2", []*rt.RouteTable{oneRoute(port, be)}, nil); err != nil || p.Version() != "v2" {
		t.Fatalf("a version applied while draining: %v, serving %q; want it taken", err, p.Version())
	}

	close(b.release)
	if a := <-answered; a.err != nil || a.code != 200 || a.body != "held" {
		t.Fatalf("the request in flight: %d %q %v; want 200 held", a.code, a.body, a.err)
	}
	if err := waitDrained(t, done); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

// An upgraded connection keeps working after the listeners close, and
// Drain waits for it.
func TestDrainWaitsForUpgradedConnections(t *testing.T) {
	b := newDrainBackend(t)
	p, port := startDraining(t, b)
	conn, br := upgrade(t, port)
	done := drainAsync(p, context.Background(), 0, time.Minute)
	waitRefused(t, port)
	for i := range 3 {
		fmt.Fprintf(conn, "message %d\n", i)
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("echo:message %d\n", i) {
			t.Fatalf("through the upgraded connection after the listeners closed: %q %v", line, err)
		}
		stillRunning(t, done, "an upgraded connection was open")
	}
	conn.Close()
	if err := waitDrained(t, done); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

func upgrade(t *testing.T, port uint32) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return conn, br
}

// The drain timeout bounds everything: what is still running then, a
// request and an upgraded connection, is cut, and Drain says so.
func TestDrainTimeoutCutsWhatIsLeft(t *testing.T) {
	b := newDrainBackend(t)
	p, port := startDraining(t, b)
	_, br := upgrade(t, port)
	failed := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/hold", port))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = fmt.Errorf("answered %d", resp.StatusCode)
			}
		}
		failed <- err
	}()
	<-b.held
	err := waitDrained(t, drainAsync(p, context.Background(), 0, 200*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "--drain-timeout") {
		t.Fatalf("Drain after its timeout: %v; want an error naming --drain-timeout", err)
	}
	if err := <-failed; err == nil {
		t.Fatal("the request cut by the drain timeout still got an answer")
	}
	wantClosed(t, br, "after the drain timeout")
}

// wantClosed reads from an upgraded connection, which must end (not time
// out) because the proxy closed it.
func wantClosed(t *testing.T, br *bufio.Reader, when string) {
	t.Helper()
	_, err := br.ReadString('\n')
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the upgraded connection %s: read %v; want it closed by the proxy", when, err)
	}
}

// Cancelling the drain's context (a second SIGTERM) skips the rest of the
// delay and cuts every connection.
func TestDrainCutShort(t *testing.T) {
	b := newDrainBackend(t)
	p, port := startDraining(t, b)
	_, br := upgrade(t, port)
	ctx, cancel := context.WithCancel(context.Background())
	done := drainAsync(p, ctx, time.Minute, time.Minute)
	stillRunning(t, done, "the drain delay was running")
	cancel()
	err := waitDrained(t, done)
	if err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("Drain cut short: %v; want an error saying so", err)
	}
	waitRefused(t, port)
	wantClosed(t, br, "after the drain was cut short")
}
