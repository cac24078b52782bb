package proxy

import (
	"errors"
	"net"
	"sync"
	"time"
)

// portListener owns a port's socket and hands its connections to the
// http.Server serving the port now. A version that changes the servers'
// settings starts a new server on a view of the same socket and shuts the
// old one down gracefully: the socket never closes, so no connection is
// refused, and the old server finishes the requests it holds.
type portListener struct {
	net.Listener
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newPortListener(ln net.Listener) *portListener {
	pl := &portListener{Listener: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	go pl.accept()
	return pl
}

func (pl *portListener) accept() {
	var delay time.Duration
	for {
		c, err := pl.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors and the like: back off as
			// http.Server does, until the socket is closed.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-pl.done:
				return
			}
			continue
		}
		delay = 0
		select {
		case pl.conns <- c:
		case <-pl.done:
			c.Close()
			return
		}
	}
}

// Close closes the socket: every view stops accepting.
func (pl *portListener) Close() error {
	var err error
	pl.closeOnce.Do(func() {
		close(pl.done)
		err = pl.Listener.Close()
	})
	return err
}

// view is what one http.Server accepts from; closing it leaves the socket
// to the next server.
func (pl *portListener) view() net.Listener {
	return &listenerView{pl: pl, closed: make(chan struct{})}
}

type listenerView struct {
	pl     *portListener
	closed chan struct{}
	once   sync.Once
}

func (v *listenerView) Accept() (net.Conn, error) {
	select {
	case <-v.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-v.pl.conns:
		return c, nil
	case <-v.closed:
	case <-v.pl.done:
	}
	return nil, net.ErrClosed
}

func (v *listenerView) Close() error {
	v.once.Do(func() { close(v.closed) })
	return nil
}

func (v *listenerView) Addr() net.Addr { return v.pl.Addr() }
