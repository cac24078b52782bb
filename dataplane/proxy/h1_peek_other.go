//go:build !linux

package proxy

import "syscall"

// peeker is a no-op where the proxy does not run in production: a pooled
// connection is then checked only for bytes already buffered.
type peeker struct{}

func (p *peeker) init(syscall.Conn) {}

func (p *peeker) readable() bool { return false }

// flushThenRead writes the request bw holds, then reads.
func (hc *h1Conn) flushThenRead(b []byte) (int, error) {
	if err := hc.bw.Flush(); err != nil {
		return 0, err
	}
	return hc.c.Read(b)
}
