package iscsi

import (
	"time"

	"github.com/rbdgw/rbdgw/gateway/config"
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

	// Bounds against hostile or broken initiators (limits.go).
	dataOutTimeout  time.Duration
	discoveryIdle   time.Duration
	connBuffer      int64 // bytes
	gatewayBuffer   int64 // bytes
	connLimit       int
	perAddressLimit int
	perInitiator    int
	targetReset     string // config.TargetReset*
	// CHAP throttle (chapthrottle.go): constants, fields for tests.
	chapBaseDelay, chapMaxDelay time.Duration
}

const (
	defaultLoginTimeout = 15 * time.Second
	defaultLogoutGrace  = 5 * time.Second
	// A memory image or a page-cache hit answers a 4 KiB command in a few
	// microseconds, RBD in hundreds.
	defaultInlineLatency = 50 * time.Microsecond

	// RFC 7143 section 13 bounds of the length keys, either side's.
	minDataSegment = config.MinDataSegmentLength
	maxDataSegment = config.MaxDataSegmentLength
)

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

// resolveSettings applies the defaults and ranges of config.TuningLimits:
// the daemon validated its configuration already, and a target embedded
// elsewhere still never offers a value outside them.
func resolveSettings(o Options) settings {
	t := o.Tuning.Clamped()
	s := settings{
		queueDepth:        t.QueueDepth,
		maxRecvDSL:        t.MaxRecvDataSegmentLength,
		maxBurst:          t.MaxBurstLength,
		firstBurst:        t.FirstBurstLength, // at most maxBurst (RFC 7143 section 13.14)
		maxOutstandingR2T: t.MaxOutstandingR2T,
		preferDigests:     t.PreferDigests,
		nopInterval:       time.Duration(t.NopInIntervalSeconds) * time.Second,
		nopTimeout:        time.Duration(t.NopInTimeoutSeconds) * time.Second,
		loginTimeout:      o.LoginTimeout,
		logoutGrace:       o.LogoutGrace,

		dataOutTimeout:  time.Duration(t.DataOutTimeoutSeconds) * time.Second,
		discoveryIdle:   time.Duration(t.DiscoveryIdleTimeoutSeconds) * time.Second,
		connBuffer:      int64(t.ConnectionBufferMiB) << 20,
		gatewayBuffer:   int64(t.GatewayBufferMiB) << 20,
		connLimit:       t.ConnectionLimit,
		perAddressLimit: t.ConnectionsPerAddress,
		perInitiator:    t.SessionsPerInitiator,
		targetReset:     t.TargetReset,
		chapBaseDelay:   chapBaseDelay,
		chapMaxDelay:    chapMaxDelay,
	}
	if o.DataOutTimeout > 0 {
		s.dataOutTimeout = o.DataOutTimeout
	}
	if o.DiscoveryIdleTimeout > 0 {
		s.discoveryIdle = o.DiscoveryIdleTimeout
	}
	if o.chapBaseDelay > 0 {
		s.chapBaseDelay = o.chapBaseDelay
	}
	if o.chapMaxDelay > 0 {
		s.chapMaxDelay = o.chapMaxDelay
	}
	if o.NopInInterval != 0 {
		s.nopInterval = o.NopInInterval
	}
	if o.NopInTimeout > 0 {
		s.nopTimeout = o.NopInTimeout
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
