package proxy

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
)

// relayInterim reports whether an interim (1xx) response of the backend
// goes on to the client. 100 Continue does not: the proxy strips Expect
// from what it forwards and answers 100-continue itself when it reads the
// body (as Envoy does), so a backend's 100 answers nothing the client
// asked. Nor does any 1xx to an HTTP/1.0 client, which must not receive
// one (RFC 9110 §15.2). 103 Early Hints and the like go on.
func relayInterim(out *http.Request, code int) bool {
	return code != http.StatusContinue && out.ProtoAtLeast(1, 1)
}

// interimContext is a request's context whose client trace relays only
// what relayInterim allows: http.Transport hands every 1xx to the trace
// httputil.ReverseProxy installs, which writes it to the client.
type interimContext struct {
	context.Context
	trace httptrace.ClientTrace
}

func (c *interimContext) Value(key any) any {
	v := c.Context.Value(key)
	if _, ok := v.(*httptrace.ClientTrace); ok {
		return &c.trace
	}
	return v
}

// filterInterim returns out with its interim responses filtered by
// relayInterim, for transports other than h1Transport (which filters
// itself).
func filterInterim(out *http.Request) *http.Request {
	orig := httptrace.ContextClientTrace(out.Context())
	if orig == nil || orig.Got1xxResponse == nil {
		return out
	}
	c := &interimContext{Context: out.Context(), trace: *orig}
	relay := orig.Got1xxResponse
	c.trace.Got1xxResponse = func(code int, h textproto.MIMEHeader) error {
		if !relayInterim(out, code) {
			return nil
		}
		return relay(code, h)
	}
	return out.WithContext(c)
}
