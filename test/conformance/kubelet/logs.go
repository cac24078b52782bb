package kubelet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxLineLength splits longer output lines into partial records.
const maxLineLength = 16 << 10

// logFile holds one container start's output, a record per line in the
// CRI format: "<RFC3339Nano time> <stream> <F|P> <line>".
type logFile struct {
	mu sync.Mutex
	f  *os.File
}

func createLogFile(path string) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the log file: %w", err)
	}
	return &logFile{f: f}, nil
}

func (l *logFile) record(stream string, partial bool, line []byte) {
	tag := "F"
	if partial {
		tag = "P"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.f, "%s %s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), stream, tag, line)
}

func (l *logFile) Close() error { return l.f.Close() }

// stream is an io.Writer for one output stream of the container.
func (l *logFile) stream(name string) *lineWriter { return &lineWriter{file: l, stream: name} }

// lineWriter timestamps each complete line as it arrives.
type lineWriter struct {
	file   *logFile
	stream string
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.file.record(w.stream, false, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= maxLineLength {
		w.file.record(w.stream, true, w.buf[:maxLineLength])
		w.buf = w.buf[maxLineLength:]
	}
	w.buf = append([]byte(nil), w.buf...)
	return len(p), nil
}

// flush records an unterminated last line.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.file.record(w.stream, false, w.buf)
		w.buf = nil
	}
}

// logEntry is one record of a log file.
type logEntry struct {
	time    time.Time
	stream  string
	partial bool
	line    string
}

func readLogFile(path string) ([]logEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var entries []logEntry
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 64<<10), 2*maxLineLength)
	for scanner.Scan() {
		parts := strings.SplitN(scanner.Text(), " ", 4)
		if len(parts) != 4 {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			continue
		}
		entries = append(entries, logEntry{time: t, stream: parts[1], partial: parts[2] == "P", line: parts[3]})
	}
	return entries, scanner.Err()
}

// logFiles lists a container's log files, one per start, oldest first.
func logFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type numbered struct {
		n    int
		path string
	}
	var files []numbered
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log"))
		if err == nil && strings.HasSuffix(e.Name(), ".log") {
			files = append(files, numbered{n, filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].n < files[j].n })
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.path
	}
	return paths, nil
}

// logOptions are the query parameters of GET /containerLogs.
type logOptions struct {
	since      time.Time
	tail       int // negative: all
	limitBytes int64
	timestamps bool
	previous   bool
	stream     string // "", "All", "Stdout" or "Stderr"
}

func parseLogOptions(q map[string][]string, now time.Time) (logOptions, error) {
	get := func(key string) string {
		if v := q[key]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	o := logOptions{tail: -1, timestamps: get("timestamps") == "true", previous: get("previous") == "true", stream: get("stream")}
	if s := get("sinceTime"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return o, fmt.Errorf("sinceTime: %w", err)
		}
		o.since = t
	}
	if s := get("sinceSeconds"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return o, fmt.Errorf("sinceSeconds: %q is not a non-negative integer", s)
		}
		if t := now.Add(-time.Duration(n) * time.Second); t.After(o.since) {
			o.since = t
		}
	}
	if s := get("tailLines"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return o, fmt.Errorf("tailLines: %q is not a non-negative integer", s)
		}
		o.tail = n
	}
	if s := get("limitBytes"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("limitBytes: %q is not a positive integer", s)
		}
		o.limitBytes = n
	}
	switch o.stream {
	case "", "All", "Stdout", "Stderr":
	default:
		return o, fmt.Errorf("stream: %q is not All, Stdout or Stderr", o.stream)
	}
	return o, nil
}

// writeLogs writes the entries the options select, like the kubelet: the
// stream and time filters first, then the tail, then the byte limit.
func writeLogs(w io.Writer, entries []logEntry, o logOptions) error {
	var selected []logEntry
	for _, e := range entries {
		if o.stream == "Stdout" && e.stream != "stdout" || o.stream == "Stderr" && e.stream != "stderr" {
			continue
		}
		if !o.since.IsZero() && e.time.Before(o.since) {
			continue
		}
		selected = append(selected, e)
	}
	if o.tail >= 0 && len(selected) > o.tail {
		selected = selected[len(selected)-o.tail:]
	}
	if o.limitBytes > 0 {
		w = &limitWriter{w: w, left: o.limitBytes}
	}
	for _, e := range selected {
		var b strings.Builder
		if o.timestamps {
			b.WriteString(e.time.Format(time.RFC3339Nano) + " ")
		}
		b.WriteString(e.line)
		if !e.partial {
			b.WriteByte('\n')
		}
		if _, err := io.WriteString(w, b.String()); err != nil {
			if errors.Is(err, errLimitReached) {
				return nil
			}
			return err
		}
	}
	return nil
}

var errLimitReached = errors.New("byte limit reached")

type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errLimitReached
	}
	if int64(len(p)) > l.left {
		n, err := l.w.Write(p[:l.left])
		l.left = 0
		if err == nil {
			err = errLimitReached
		}
		return n, err
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// containerLogPath is the log file to serve: the current start's, or the
// one before it for previous=true.
func (k *Kubelet) containerLogPath(namespace, pod, container string, previous bool) (string, error) {
	files, err := logFiles(filepath.Join(k.podDir(namespace, pod), "containers", container))
	if errors.Is(err, fs.ErrNotExist) || len(files) == 0 {
		return "", fmt.Errorf("container %q in pod %q has not started", container, pod)
	}
	if err != nil {
		return "", err
	}
	if previous {
		if len(files) < 2 {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, pod)
		}
		return files[len(files)-2], nil
	}
	return files[len(files)-1], nil
}
