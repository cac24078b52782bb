package main

import (
	"net/http"
	"testing"
	"time"
)

func TestExpect(t *testing.T) {
	answerWith := func(status int, header string) *http.Response {
		r := &http.Response{StatusCode: status, Header: http.Header{}}
		if header != "" {
			r.Header.Set("x-churn", header)
		}
		return r
	}
	cases := []struct {
		name string
		resp *http.Response
		body string
		// the change: status wanted, header wanted, status before
		want, before int
		header       string
		verdict      verdict
	}{
		{"add: still 404", answerWith(404, ""), "", 200, 404, "", verdict{}},
		{"add: served", answerWith(200, ""), answer, 200, 404, "", verdict{done: true}},
		{"add: 503 on the way", answerWith(503, ""), "", 200, 404, "", verdict{bad: true}},
		{"add: another backend's body", answerWith(200, ""), "other", 200, 404, "", verdict{bad: true}},
		{"modify: old header", answerWith(200, "3"), answer, 200, 200, "7", verdict{}},
		{"modify: no header yet", answerWith(200, ""), answer, 200, 200, "7", verdict{}},
		{"modify: new header", answerWith(200, "7"), answer, 200, 200, "7", verdict{done: true}},
		{"modify: route gone", answerWith(404, ""), "", 200, 200, "7", verdict{bad: true}},
		{"delete: still served", answerWith(200, ""), answer, 404, 200, "", verdict{}},
		{"delete: gone", answerWith(404, ""), "", 404, 200, "", verdict{done: true}},
		{"request failed", nil, "", 404, 200, "", verdict{bad: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := expect(c.resp, c.body, c.want, c.header, c.before); got != c.verdict {
				t.Errorf("got %+v, want %+v", got, c.verdict)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.9: 90 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p*100, got, want)
		}
	}
	if got := percentile(ds[:1], 0.99); got != 100*time.Millisecond {
		t.Errorf("p99 of one = %v", got)
	}
}
