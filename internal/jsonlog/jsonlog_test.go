package jsonlog_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"

	"github.com/gatehouse-dev/gatehouse/internal/jsonlog"
)

// syncBuffer: klog and gRPC may write from their own goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEveryLoggerWritesJSON: whatever logger a library uses, the line is a
// JSON object with the level and the message.
func TestEveryLoggerWritesJSON(t *testing.T) {
	var out syncBuffer
	jsonlog.New(&out, slog.LevelInfo)
	log.Printf("http: TLS handshake error from %s: EOF", "10.0.0.1:5555")
	slog.Default().With("component", "webhook-certificates").Info("created CA")
	klog.InfoS("attempting to acquire leader lease", "lease", "gatehouse-system/gatehouse-hub")
	klog.Errorf("failed to list %s", "*v1.Secret")
	klog.Flush()
	grpclog.Errorf("[transport] %s", "connection reset")
	grpclog.Warning("[core] ", "addrConn failed")
	grpclog.Info("[core] Channel Connectivity change to READY") // debug: not written at info

	want := map[string]string{
		"http: TLS handshake error from 10.0.0.1:5555: EOF": "INFO",
		"created CA":                         "INFO",
		"attempting to acquire leader lease": "INFO",
		"failed to list *v1.Secret":          "ERROR",
		"[transport] connection reset":       "ERROR",
		"[core] addrConn failed":             "WARN",
	}
	s := bufio.NewScanner(strings.NewReader(out.String()))
	for s.Scan() {
		var line struct{ Level, Msg string }
		if err := json.Unmarshal(s.Bytes(), &line); err != nil {
			t.Errorf("not a JSON line: %q", s.Text())
			continue
		}
		level, ok := want[line.Msg]
		if !ok {
			t.Errorf("unexpected line %s", s.Text())
			continue
		}
		if line.Level != level {
			t.Errorf("%q logged at %s, want %s", line.Msg, line.Level, level)
		}
		delete(want, line.Msg)
	}
	for msg := range want {
		t.Errorf("%q was not logged; the log:\n%s", msg, out.String())
	}
}
