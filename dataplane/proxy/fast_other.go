//go:build !linux

package proxy

import "net"

// deferred is empty where responses are written at once.
type deferred struct{}

func (fc *fastConn) initDeferred(net.Conn) {}

func (fc *fastConn) canDefer() bool { return false }

func (fc *fastConn) readAfterWrite(b []byte) error {
	_, err := fc.c.Write(b)
	return err
}

func (fc *fastConn) missedRequest() {}
