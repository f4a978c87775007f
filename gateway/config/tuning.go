package config

import "fmt"

// Defaults the target offers when Tuning leaves a value at zero.
const (
	DefaultQueueDepth               = 128
	DefaultMaxRecvDataSegmentLength = 256 << 10
	DefaultMaxBurstLength           = 1 << 20
	DefaultFirstBurstLength         = 256 << 10
	DefaultMaxOutstandingR2T        = 4
	DefaultMaxConnections           = 1
	DefaultNopInInterval            = 10 // seconds
	DefaultNopInTimeout             = 30 // seconds

	// Resource bounds against hostile or broken initiators
	// (docs/operations.md, "Resource limits").
	DefaultDataOutTimeout        = 30   // seconds
	DefaultDiscoveryIdleTimeout  = 30   // seconds
	DefaultConnectionBufferMiB   = 32   // command buffers per connection
	DefaultGatewayBufferMiB      = 1024 // command buffers of the whole gateway
	DefaultConnectionLimit       = 4096
	DefaultConnectionsPerAddress = 256
	DefaultSessionsPerInitiator  = 256
)

// TargetReset values: what TARGET WARM RESET and TARGET COLD RESET from an
// initiator do (docs/adr/0006-target-resets.md).
const (
	// TargetResetSession (the default, also for ""): the resets reach the
	// logical units the issuing session sees; a cold reset then ends the
	// issuing session only.
	TargetResetSession = "session"
	// TargetResetTarget: a cold reset also ends every other session of
	// the target, as RFC 7143 section 11.5.1 describes.
	TargetResetTarget = "target"
	// TargetResetRefuse: both are answered "function authorization
	// failed" and change nothing.
	TargetResetRefuse = "refuse"
)

// The range of the iSCSI length keys: RFC 7143 section 13 declares
// MaxRecvDataSegmentLength, MaxBurstLength and FirstBurstLength as
// 512..2^24-1, whichever side declares them.
const (
	MinDataSegmentLength = 512
	MaxDataSegmentLength = 1<<24 - 1
)

// Limit is the range and default of one Tuning value. Zero in a Tuning
// means the default; any other value must lie in Min..Max.
type Limit struct {
	// Key names the value in configuration files, etcd and the REST API.
	Key      string
	Min, Max int
	Default  int
	field    func(*Tuning) *int
}

// TuningLimits is the one definition of the session tuning limits: the
// file loader, the cluster store and the iSCSI target all use it.
var TuningLimits = []Limit{
	// The CmdSN window of a session (MaxCmdSN - ExpCmdSN + 1): how many
	// commands an initiator may have in flight. Every slot can hold a
	// command with its data buffer (at least MaxBurstLength bytes for a
	// write), so the window bounds a session's memory: 4096 slots of the
	// default 1 MiB burst are 4 GiB. No initiator queues deeper: Linux's
	// iSCSI initiator allows at most 4096 commands per session
	// (ISCSI_TOTAL_CMDS_MAX), ESXi and Windows far fewer.
	{Key: "queue_depth", Min: 1, Max: 4096, Default: DefaultQueueDepth,
		field: func(t *Tuning) *int { return &t.QueueDepth }},
	// RFC 7143 section 13.12: the largest data segment the target accepts
	// in one PDU.
	{Key: "max_recv_data_segment_length", Min: MinDataSegmentLength, Max: MaxDataSegmentLength, Default: DefaultMaxRecvDataSegmentLength,
		field: func(t *Tuning) *int { return &t.MaxRecvDataSegmentLength }},
	// RFC 7143 section 13.13: the largest Data-In or solicited Data-Out
	// sequence.
	{Key: "max_burst_length", Min: MinDataSegmentLength, Max: MaxDataSegmentLength, Default: DefaultMaxBurstLength,
		field: func(t *Tuning) *int { return &t.MaxBurstLength }},
	// RFC 7143 section 13.14: unsolicited data; also at most
	// max_burst_length (Tuning.Validate checks that).
	{Key: "first_burst_length", Min: MinDataSegmentLength, Max: MaxDataSegmentLength, Default: DefaultFirstBurstLength,
		field: func(t *Tuning) *int { return &t.FirstBurstLength }},
	// RFC 7143 section 13.17. R2Ts share the command's buffer, so the
	// protocol's range costs no memory.
	{Key: "max_outstanding_r2t", Min: 1, Max: 65535, Default: DefaultMaxOutstandingR2T,
		field: func(t *Tuning) *int { return &t.MaxOutstandingR2T }},
	// RFC 7143 section 13.2 allows 1..65535, but sessions have exactly one
	// connection (docs/adr/0002-one-connection-per-session.md); a larger
	// value would promise what the target never negotiates.
	{Key: "max_connections", Min: 1, Max: 1, Default: DefaultMaxConnections,
		field: func(t *Tuning) *int { return &t.MaxConnections }},
	// Seconds between target-initiated NOP-In pings on an idle connection,
	// and how long a ping may stay unanswered before the connection is
	// dropped. An hour is far beyond any useful failure detection.
	{Key: "nopin_interval", Min: 1, Max: 3600, Default: DefaultNopInInterval,
		field: func(t *Tuning) *int { return &t.NopInIntervalSeconds }},
	{Key: "nopin_timeout", Min: 1, Max: 3600, Default: DefaultNopInTimeout,
		field: func(t *Tuning) *int { return &t.NopInTimeoutSeconds }},
	// Seconds a command may wait for Data-Out the target expects (after
	// an R2T, or announced unsolicited data) without any arriving; then
	// the command is aborted and the connection dropped, so that an
	// initiator cannot pin a command's buffer by never sending its data.
	{Key: "dataout_timeout", Min: 1, Max: 3600, Default: DefaultDataOutTimeout,
		field: func(t *Tuning) *int { return &t.DataOutTimeoutSeconds }},
	// Seconds a discovery session may stay without a request before it is
	// closed. Discovery is a login, a SendTargets and a logout.
	{Key: "discovery_idle_timeout", Min: 1, Max: 3600, Default: DefaultDiscoveryIdleTimeout,
		field: func(t *Tuning) *int { return &t.DiscoveryIdleTimeoutSeconds }},
	// Byte budgets, in MiB, of the command buffers (Data-Out being
	// received, Data-In waiting to be sent) of one connection and of the
	// whole gateway. When either is spent, MaxCmdSN stops advancing and
	// R2Ts and reads wait until buffers come back; the initiator waits
	// instead of the gateway's memory growing.
	{Key: "connection_buffer_mib", Min: 1, Max: 16384, Default: DefaultConnectionBufferMiB,
		field: func(t *Tuning) *int { return &t.ConnectionBufferMiB }},
	{Key: "gateway_buffer_mib", Min: 16, Max: 1 << 20, Default: DefaultGatewayBufferMiB,
		field: func(t *Tuning) *int { return &t.GatewayBufferMiB }},
	// Connections the gateway accepts in all, from one source address, and
	// sessions of one initiator name (discovery included). A connection
	// over the first two limits is closed before anything is read from
	// it; a login over the third is refused with status 0x0302 (out of
	// resources). Each refusal is logged, at most once a minute per kind
	// and address or name.
	{Key: "connection_limit", Min: 1, Max: 65535, Default: DefaultConnectionLimit,
		field: func(t *Tuning) *int { return &t.ConnectionLimit }},
	{Key: "connections_per_address", Min: 1, Max: 65535, Default: DefaultConnectionsPerAddress,
		field: func(t *Tuning) *int { return &t.ConnectionsPerAddress }},
	{Key: "sessions_per_initiator", Min: 1, Max: 65535, Default: DefaultSessionsPerInitiator,
		field: func(t *Tuning) *int { return &t.SessionsPerInitiator }},
}

// Get returns the limit's value in t (0: not set).
func (l *Limit) Get(t *Tuning) int { return *l.field(t) }

// Check reports whether v is acceptable: 0 (the default) or Min..Max. The
// error names the key and the range.
func (l *Limit) Check(v int) error {
	if v != 0 && (v < l.Min || v > l.Max) {
		return fmt.Errorf("%s %d: must be %d..%d (or 0 for the default %d)", l.Key, v, l.Min, l.Max, l.Default)
	}
	return nil
}

// Clamp returns v with the default for 0 (or a negative value), brought
// into Min..Max.
func (l *Limit) Clamp(v int) int {
	if v <= 0 {
		v = l.Default
	}
	return min(max(v, l.Min), l.Max)
}

// Validate checks every value against TuningLimits (zero keeps the
// default) and that first_burst_length does not exceed max_burst_length.
// The error names the key and its range.
func (t *Tuning) Validate() error {
	for i := range TuningLimits {
		l := &TuningLimits[i]
		if err := l.Check(l.Get(t)); err != nil {
			return err
		}
	}
	// RFC 7143 section 13.14. An unset first_burst_length follows a small
	// max_burst_length (WithDefaults), so only a set one can be too large.
	if eff := t.WithDefaults(); t.FirstBurstLength != 0 && t.FirstBurstLength > eff.MaxBurstLength {
		return fmt.Errorf("first_burst_length %d: must not exceed max_burst_length %d", t.FirstBurstLength, eff.MaxBurstLength)
	}
	switch t.TargetReset {
	case "", TargetResetSession, TargetResetTarget, TargetResetRefuse:
	default:
		return fmt.Errorf("target_reset %q: must be %q (default), %q or %q",
			t.TargetReset, TargetResetSession, TargetResetTarget, TargetResetRefuse)
	}
	return nil
}

// WithDefaults returns t with every zero value replaced by its default. An
// unset first_burst_length takes the default or max_burst_length, whichever
// is smaller. Values are not clamped: call Validate (or Clamped) for that.
func (t Tuning) WithDefaults() Tuning {
	unsetFirst := t.FirstBurstLength == 0
	for i := range TuningLimits {
		l := &TuningLimits[i]
		if p := l.field(&t); *p == 0 {
			*p = l.Default
		}
	}
	if unsetFirst {
		t.FirstBurstLength = min(t.FirstBurstLength, t.MaxBurstLength)
	}
	return t
}

// Clamped returns t with defaults for unset (zero or negative) values and
// every value brought into its range, first_burst_length at most
// max_burst_length: what a target offers whatever it was given.
func (t Tuning) Clamped() Tuning {
	for i := range TuningLimits {
		l := &TuningLimits[i]
		p := l.field(&t)
		*p = l.Clamp(*p)
	}
	t.FirstBurstLength = min(t.FirstBurstLength, t.MaxBurstLength)
	switch t.TargetReset {
	case TargetResetSession, TargetResetTarget, TargetResetRefuse:
	default:
		t.TargetReset = TargetResetSession
	}
	return t
}
