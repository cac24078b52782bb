package proxy

import (
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
