package proxy

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// A response's write and the read of the next request, as one. Go's poller
// forgets a readiness it saw before a read began, so a read cannot wait
// for the next request without first trying a read that fails with EAGAIN
// (one system call per request that nginx, which keeps readiness itself,
// does not make). The next request of a client that does not pipeline
// cannot come before the response it waits for, so when the response is
// written from inside the read, after the read began, the request always
// wakes it, and the failing read is saved.
//
// A client that pipelines could have sent its next request before the
// read began, and the poller could have forgotten it: the wait is bounded
// (deferredWait), a connection whose wait ran out, or that sent a request
// before its previous answer, writes its responses at once from then on.

// deferredWait bounds a wait that writes first; past it the connection
// reads as usual.
const deferredWait = 50 * time.Millisecond

// deferred is the state of the read in progress.
type deferred struct {
	// waitedOut is when the last such wait ran out (zero: it did not).
	waitedOut time.Time
	raw       syscall.RawConn
	readFn    func(fd uintptr) bool
	towrite   []byte
	wrote     bool
	rn        int
	rerr      error
}

func (fc *fastConn) initDeferred(c net.Conn) {
	fc.raw, fc.waitedOut = nil, time.Time{}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	fc.raw = raw
	if fc.readFn == nil {
		fc.readFn = fc.writeOrRead
	}
}

// canDefer reports whether the response in fc.out may wait for the next
// read to be written.
func (fc *fastConn) canDefer() bool {
	return fc.raw != nil && !fc.noDefer && !fc.closing && fc.state == nil
}

// readAfterWrite writes b and reads what the client sends next into the
// read buffer; a wait that ran out returns nil with nothing read, and the
// caller reads as usual.
func (fc *fastConn) readAfterWrite(b []byte) error {
	// The wait's bound is between half of deferredWait and all of it
	// away: set once for many requests, and never so near that a client
	// answering at an ordinary pace runs into it.
	now := time.Now()
	if fc.deadline.Before(now.Add(deferredWait/2)) || fc.deadline.After(now.Add(deferredWait)) {
		fc.deadline = now.Add(deferredWait)
		fc.c.SetReadDeadline(fc.deadline)
	}
	fc.towrite, fc.wrote, fc.rn, fc.rerr = b, false, 0, nil
	err := fc.raw.Read(fc.readFn)
	fc.towrite = nil
	if !fc.wrote {
		// The read could not begin: write on its own.
		if _, werr := fc.c.Write(b); werr != nil {
			return werr
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			fc.waitedOut = time.Now()
			return nil
		}
	}
	if fc.wrote && !fc.idle.CompareAndSwap(true, false) {
		return net.ErrClosed // closed while idle by a shutdown
	}
	switch {
	case fc.rerr != nil:
		return fc.rerr
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		// An idle client, or one whose request came before the wait
		// began: the next read tells which (missedRequest).
		fc.waitedOut = time.Now()
		return nil
	case err != nil:
		return err
	case fc.rn == 0:
		return net.ErrClosed // the client closed
	}
	fc.w += fc.rn
	return nil
}

func (fc *fastConn) writeOrRead(fd uintptr) bool {
	if !fc.wrote {
		fc.wrote = true
		if _, err := fc.c.Write(fc.towrite); err != nil {
			fc.rerr = err
			fc.idle.Store(true)
			return true
		}
		fc.idle.Store(true)
		if fc.f.closed.Load() {
			fc.rerr = net.ErrClosed
			return true
		}
		return false // the next request cannot be there yet: wait for it
	}
	for {
		n, err := syscall.Read(int(fd), fc.in[fc.w:])
		switch err {
		case nil:
			fc.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		fc.rerr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
		return true
	}
}

// missedRequest is called when a read after a wait that ran out got
// bytes: at once means they were there all along, and the client's
// responses are written at once from then on.
func (fc *fastConn) missedRequest() {
	if !fc.waitedOut.IsZero() {
		if time.Since(fc.waitedOut) < time.Millisecond {
			fc.noDefer = true
		}
		fc.waitedOut = time.Time{}
	}
}
