// Package jsonlog makes a process write JSON lines only. A binary logs
// through one slog JSON handler, but the libraries it links write through
// loggers of their own: Go's log package (net/http's server errors), the
// default slog logger (plain text until it is replaced), klog (client-go:
// leader election, reflectors) and grpclog (the push stream). A plain-text
// line among JSON ones breaks every tool that reads the log as JSON, so New
// sends all of them to the one handler.
package jsonlog

import (
	"io"
	"log/slog"

	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"
)

// New returns a JSON logger writing to w at level and above, and makes it
// the destination of every other logger in the process.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	// Also redirects Go's log package to the handler, at level Info.
	slog.SetDefault(logger)
	klog.SetSlogLogger(logger.With("logger", "klog"))
	grpclog.SetLoggerV2(grpcLogger{logger.With("logger", "grpc")})
	return logger
}
