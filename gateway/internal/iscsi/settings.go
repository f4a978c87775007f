package iscsi

import (
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/login"
)

// settings are Options with defaults applied.
type settings struct {
	queueDepth        int
	maxRecvDSL        int // the data segment size the target accepts
	maxBurst          int
	firstBurst        int
	maxOutstandingR2T int
	preferDigests     bool          // choose CRC32C whenever the initiator lists it
	nopInterval       time.Duration // <= 0: no target-initiated pings
	nopTimeout        time.Duration
	loginTimeout      time.Duration
	logoutGrace       time.Duration
	inlineLatency     time.Duration // <= 0: nothing runs inline
}

const (
	defaultQueueDepth   = 128
	defaultMaxRecvDSL   = 262144
	defaultMaxBurst     = 1 << 20
	defaultFirstBurst   = 256 << 10
	defaultMaxOutR2T    = 4
	defaultNopInterval  = 10 * time.Second
	defaultNopTimeout   = 30 * time.Second
	defaultLoginTimeout = 15 * time.Second
	defaultLogoutGrace  = 5 * time.Second
	// A memory image or a page-cache hit answers a 4 KiB command in a few
	// microseconds, RBD in hundreds.
	defaultInlineLatency = 50 * time.Microsecond

	// RFC 7143 section 13 bounds.
	minDataSegment = 512
	maxDataSegment = 1<<24 - 1
)

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

func resolveSettings(o Options) settings {
	t := o.Tuning
	s := settings{
		queueDepth:        clamp(orDefault(t.QueueDepth, defaultQueueDepth), 1, 1<<16),
		maxRecvDSL:        clamp(orDefault(t.MaxRecvDataSegmentLength, defaultMaxRecvDSL), minDataSegment, maxDataSegment),
		maxBurst:          clamp(orDefault(t.MaxBurstLength, defaultMaxBurst), minDataSegment, maxDataSegment),
		firstBurst:        clamp(orDefault(t.FirstBurstLength, defaultFirstBurst), minDataSegment, maxDataSegment),
		maxOutstandingR2T: clamp(orDefault(t.MaxOutstandingR2T, defaultMaxOutR2T), 1, 65535),
		preferDigests:     t.PreferDigests,
		nopInterval:       time.Duration(t.NopInIntervalSeconds) * time.Second,
		nopTimeout:        time.Duration(t.NopInTimeoutSeconds) * time.Second,
		loginTimeout:      o.LoginTimeout,
		logoutGrace:       o.LogoutGrace,
	}
	// FirstBurstLength must not exceed MaxBurstLength (RFC 7143 section 13.14).
	s.firstBurst = min(s.firstBurst, s.maxBurst)
	if o.NopInInterval != 0 {
		s.nopInterval = o.NopInInterval
	} else if s.nopInterval == 0 {
		s.nopInterval = defaultNopInterval
	}
	if o.NopInTimeout > 0 {
		s.nopTimeout = o.NopInTimeout
	} else if s.nopTimeout <= 0 {
		s.nopTimeout = defaultNopTimeout
	}
	if s.loginTimeout <= 0 {
		s.loginTimeout = defaultLoginTimeout
	}
	if s.logoutGrace <= 0 {
		s.logoutGrace = defaultLogoutGrace
	}
	switch s.inlineLatency = o.InlineLatency; {
	case s.inlineLatency == 0:
		s.inlineLatency = defaultInlineLatency
	case s.inlineLatency < 0:
		s.inlineLatency = 0
	}
	return s
}

// offer is what the target proposes in login negotiation.
func (s *settings) offer() login.Params {
	p := login.DefaultParams()
	p.MaxConnections = 1
	p.InitialR2T = false
	p.ImmediateData = true
	p.TargetMaxRecvDataSegmentLength = s.maxRecvDSL
	p.MaxBurstLength = s.maxBurst
	p.FirstBurstLength = s.firstBurst
	p.MaxOutstandingR2T = s.maxOutstandingR2T
	p.HeaderDigest = s.preferDigests
	p.DataDigest = s.preferDigests
	// Nothing survives a failed connection at ErrorRecoveryLevel 0 here, so
	// no state is retained for a later continuation.
	p.DefaultTime2Retain = 0
	p.ErrorRecoveryLevel = 0
	return p
}
