package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// streamConn is a relayed connection, as the proxy tracks it to count it
// against its listener's limit and to drain it.
type streamConn struct {
	// sock is the socket it was accepted on; listener, the listener that
	// took it.
	sock     *portListener
	listener listenerID

	mu       sync.Mutex
	client   net.Conn
	upstream net.Conn
	isCut    bool
}

// connected records the backend connection; false if the connection was
// cut meanwhile (the backend connection is then closed).
func (sc *streamConn) connected(up net.Conn) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.isCut {
		up.Close()
		return false
	}
	sc.upstream = up
	return true
}

// close closes both sides.
func (sc *streamConn) close() {
	sc.mu.Lock()
	sc.isCut = true
	client, up := sc.client, sc.upstream
	sc.mu.Unlock()
	client.Close()
	if up != nil {
		up.Close()
	}
}

// streamConns are the relayed connections open now, by listener.
type streamConns struct {
	mu          sync.Mutex
	conns       map[*streamConn]struct{}
	perListener map[listenerID]int
}

// add tracks a connection, unless its listener holds max already (zero:
// no limit).
func (s *streamConns) add(sc *streamConn, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns, s.perListener = map[*streamConn]struct{}{}, map[listenerID]int{}
	}
	if max > 0 && s.perListener[sc.listener] >= max {
		return false
	}
	s.perListener[sc.listener]++
	s.conns[sc] = struct{}{}
	return true
}

func (s *streamConns) remove(sc *streamConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, sc)
	if s.perListener[sc.listener]--; s.perListener[sc.listener] <= 0 {
		delete(s.perListener, sc.listener)
	}
}

// count is how many connections accepted on sock are open; nil counts
// every socket's.
func (s *streamConns) count(sock *portListener) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sc := range s.conns {
		if sock == nil || sc.sock == sock {
			n++
		}
	}
	return n
}

// wait waits until no connection accepted on sock (nil: on any socket)
// is open, or ctx ends.
func (s *streamConns) wait(ctx context.Context, sock *portListener) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		n := s.count(sock)
		if n == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%d relayed connections still open: %w", n, ctx.Err())
		}
	}
}

// cut closes the connections accepted on sock (nil: on any socket).
func (s *streamConns) cut(sock *portListener) {
	s.mu.Lock()
	var cut []*streamConn
	for sc := range s.conns {
		if sock == nil || sc.sock == sock {
			cut = append(cut, sc)
		}
	}
	s.mu.Unlock()
	for _, sc := range cut {
		sc.close()
	}
}

// drain lets the connections of a socket no longer served finish within
// timeout, then closes what is left.
func (s *streamConns) drain(sock *portListener, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.wait(ctx, sock); err != nil {
		log.Warn("relayed connections did not finish within the drain timeout: closed", "port", sock.Addr().String(), "drainTimeout", timeout, "error", err)
		s.cut(sock)
	}
}
