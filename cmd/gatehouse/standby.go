package main

import (
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A standby has no route tables and no engaged members: what it would
// answer is wrong. The Services reach only the elected hub, but a Pod can
// carry the role label for a moment after its hub lost the Lease (a crash,
// a partition); a proxy or an API server that reaches a standby then is
// turned away in a way it retries, and proxies keep serving their last
// table meanwhile.

const standbyMessage = "this hub replica is a standby: the elected replica serves; retry"

// refuseWhileStandby ends push streams opened before this replica is
// elected with Unavailable, which proxies answer by reconnecting.
func refuseWhileStandby(elected <-chan struct{}) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !isElected(elected) {
			return status.Error(codes.Unavailable, standbyMessage)
		}
		return handler(srv, ss)
	}
}

// standbyHandler answers admission calls with 503 before this replica is
// elected: the member's API server applies the webhook's failurePolicy, as
// when the hub cannot be reached.
func standbyHandler(elected <-chan struct{}, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isElected(elected) {
			http.Error(w, standbyMessage, http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isElected(elected <-chan struct{}) bool {
	select {
	case <-elected:
		return true
	default:
		return false
	}
}
