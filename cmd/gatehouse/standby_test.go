package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestStandbyRefuses: before this replica is elected, push streams end
// with Unavailable (proxies retry) and admission calls with 503 (the
// webhook's failurePolicy applies); once elected, both reach the handler.
func TestStandbyRefuses(t *testing.T) {
	elected := make(chan struct{})
	served := 0
	stream := func(any, grpc.ServerStream) error { served++; return nil }
	hook := standbyHandler(elected, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))
	call := func() (codes.Code, int) {
		err := refuseWhileStandby(elected)(nil, nil, &grpc.StreamServerInfo{}, stream)
		rec := httptest.NewRecorder()
		hook.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate/member/token", nil))
		return status.Code(err), rec.Code
	}
	if code, httpCode := call(); code != codes.Unavailable || httpCode != http.StatusServiceUnavailable || served != 0 {
		t.Fatalf("standby: stream %v, webhook %d, %d served; want Unavailable, 503, none", code, httpCode, served)
	}
	close(elected)
	if code, httpCode := call(); code != codes.OK || httpCode != http.StatusOK || served != 2 {
		t.Fatalf("elected: stream %v, webhook %d, %d served; want OK, 200, both", code, httpCode, served)
	}
}
