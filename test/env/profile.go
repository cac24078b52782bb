package env

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
)

// Profile records 30 s of the CPU profile of a process serving Go's
// /debug/pprof at addr (the hub's --pprof-address) into file, from now; the
// returned function waits for it and says what went wrong. Without a file
// it does nothing.
func Profile(ctx context.Context, addr, file string) func() error {
	if file == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- Fetch(ctx, "http://"+addr+"/debug/pprof/profile?seconds=30", file) }()
	return func() error { return <-done }
}

// Fetch writes what url answers into file.
func Fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
