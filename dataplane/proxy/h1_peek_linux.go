package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// peeker tells, without blocking and without consuming anything, whether a
// connection has bytes to read or was closed by its peer: one recvfrom
// with MSG_PEEK|MSG_DONTWAIT, about a microsecond, on each reuse of a
// pooled connection.
type peeker struct {
	raw syscall.RawConn
	// peekFn is peek bound once per connection, so that a check allocates
	// nothing.
	peekFn func(fd uintptr) bool
	buf    [1]byte
	// hit is the result of the last peek.
	hit bool
	// The exchange in progress (flushThenRead): readFn bound once, the
	// buffer, what was read or failed, and whether the request went out.
	readFn  func(fd uintptr) bool
	flush   func() error
	rbuf    []byte
	rn      int
	rerr    error
	flushed bool
}

func (p *peeker) init(sc syscall.Conn) {
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.raw, p.peekFn = raw, p.peek
}

// readable reports whether the peer sent bytes or closed (or reset) the
// connection. Without a descriptor it reports false.
func (p *peeker) readable() bool {
	if p.raw == nil {
		return false
	}
	p.hit = false
	if err := p.raw.Read(p.peekFn); err != nil {
		return true // the descriptor is gone: nothing to reuse
	}
	return p.hit
}

func (p *peeker) peek(fd uintptr) bool {
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p.buf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		// EAGAIN: nothing to read. Otherwise a byte nobody asked for (n >
		// 0), the peer's close (n == 0) or a broken connection.
		p.hit = errno != syscall.EAGAIN
		return true
	}
}

// flushThenRead writes the request bw holds and reads the start of its
// answer into b, waiting for the answer without first trying a read that
// would fail: Go's poller forgets a readiness it saw before a read began,
// so the write happens after the read began (inside it), and the answer,
// which cannot come before the request, is always seen. That saves the
// read that fails with EAGAIN on every exchange.
func (hc *h1Conn) flushThenRead(b []byte) (int, error) {
	p := &hc.peeker
	if p.raw == nil {
		if err := hc.bw.Flush(); err != nil {
			return 0, err
		}
		return hc.c.Read(b)
	}
	if p.readFn == nil {
		p.readFn, p.flush = p.flushOrRead, hc.bw.Flush
	}
	p.rbuf, p.rn, p.rerr, p.flushed = b, 0, nil, false
	err := p.raw.Read(p.readFn)
	p.rbuf = nil
	if err != nil && !p.flushed {
		// The read could not begin (a deadline passed): the request still
		// goes out, as a write of its own.
		if ferr := hc.bw.Flush(); ferr != nil {
			return 0, ferr
		}
	}
	switch {
	case err != nil:
		return 0, err
	case p.rerr != nil:
		return 0, p.rerr
	case p.rn == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return p.rn, nil
}

func (p *peeker) flushOrRead(fd uintptr) bool {
	if !p.flushed {
		p.flushed = true
		if err := p.flush(); err != nil {
			p.rerr = err
			return true
		}
		return false // the answer cannot be there yet: wait for it
	}
	for {
		n, err := syscall.Read(int(fd), p.rbuf)
		switch err {
		case nil:
			p.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		p.rerr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
		return true
	}
}
