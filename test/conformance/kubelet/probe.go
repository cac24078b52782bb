package kubelet

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// probe is a readiness or liveness probe with the API's defaults filled in.
type probe struct {
	h                            handler
	delay, period, timeout       time.Duration
	successThreshold, failThresh int
}

// newProbe resolves p against its container; nil when there is none.
func newProbe(p *corev1.Probe, c corev1.Container) (*probe, error) {
	if p == nil {
		return nil, nil
	}
	h, err := newHandler(p.ProbeHandler, c)
	if err != nil {
		return nil, err
	}
	seconds := func(v, def int32) time.Duration {
		if v <= 0 {
			v = def
		}
		return time.Duration(v) * time.Second
	}
	atLeastOne := func(v, def int32) int {
		if v <= 0 {
			return int(def)
		}
		return int(v)
	}
	return &probe{
		h:                h,
		delay:            time.Duration(max(p.InitialDelaySeconds, 0)) * time.Second,
		period:           seconds(p.PeriodSeconds, 10),
		timeout:          seconds(p.TimeoutSeconds, 1),
		successThreshold: atLeastOne(p.SuccessThreshold, 1),
		failThresh:       atLeastOne(p.FailureThreshold, 3),
	}, nil
}

// watch runs the probe after its initial delay and then every period
// until ctx ends. It starts from verdict initial and calls set whenever
// successThreshold successes or failureThreshold failures in a row turn
// the verdict, with the last failure's error.
func (p *probe) watch(ctx context.Context, t target, initial bool, set func(ok bool, err error)) {
	verdict := initial
	var successes, failures int
	wait := p.delay
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = p.period
		tctx, cancel := context.WithTimeout(ctx, p.timeout)
		err := p.h.run(tctx, t)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}
		switch {
		case !verdict && successes >= p.successThreshold:
			verdict = true
			set(true, nil)
		case verdict && failures >= p.failThresh:
			verdict = false
			set(false, err)
		}
	}
}
