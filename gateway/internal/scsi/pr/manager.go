package pr

import (
	"context"
	"errors"
	"log/slog"
)

// Manager applies the reservation rules of one logical unit to the State
// in its Store. It is safe for concurrent use.
type Manager struct {
	store   Store
	log     *slog.Logger
	resolve func(relativePortID uint16) (targetPort string, ok bool)
}

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(m *Manager) {
		if l != nil {
			m.log = l
		}
	}
}

// WithTargetPorts lets REGISTER AND MOVE name any target port of the
// target by its relative target port identifier. Without it only the port
// the command arrived on and ports already known from registrations can be
// named.
func WithTargetPorts(resolve func(relativePortID uint16) (targetPort string, ok bool)) Option {
	return func(m *Manager) { m.resolve = resolve }
}

// NewManager returns a Manager over store.
func NewManager(store Store, opts ...Option) *Manager {
	m := &Manager{store: store, log: slog.Default()}
	for _, o := range opts {
		o(m)
	}
	return m
}

// errUnchanged aborts a Store update that would change nothing.
var errUnchanged = errors.New("unchanged")

// In executes PERSISTENT RESERVE IN: READ KEYS, READ RESERVATION, REPORT
// CAPABILITIES or READ FULL STATUS.
func (m *Manager) In(ctx context.Context, p Port, cdb []byte) Outcome {
	if len(cdb) < cdbLength {
		return outcomeOf(invalidCDB(-1))
	}
	st, err := m.store.Get(ctx)
	if err != nil {
		return m.storeFailure("PERSISTENT RESERVE IN", p, err)
	}
	if st.Legacy != nil {
		// SPC-2: while RESERVE(6/10) holds the unit every persistent
		// reservation command conflicts, whoever sends it.
		return outcomeOf(conflict())
	}
	switch cdb[1] & 0x1f {
	case saReadKeys:
		return goodData(readKeys(st))
	case saReadReservation:
		return goodData(readReservation(st))
	case saReportCapabilities:
		return goodData(reportCapabilities(st))
	case saReadFullStatus:
		return goodData(readFullStatus(st))
	}
	return outcomeOf(invalidCDB(cdbFieldServiceAction))
}

// Out executes PERSISTENT RESERVE OUT. param is the Data-Out of the
// command.
func (m *Manager) Out(ctx context.Context, p Port, cdb, param []byte) Outcome {
	req, decodeErr := decodeProut(cdb, param)
	change := func(st *State) (Effects, error) {
		if st.Legacy != nil {
			return Effects{}, conflict()
		}
		if decodeErr != nil {
			return Effects{}, decodeErr
		}
		eff, err := applyProut(st, p, req, m.portResolver(st, p))
		if err != nil {
			return Effects{}, err
		}
		out := Effects{UAs: eff.uas}
		if req.sa == saPreemptAndAbort {
			out.AbortNexuses = eff.preempted
			out.AbortTasksOf = initiatorPorts(eff.preempted)
		}
		return out, nil
	}
	var eff Effects
	var err error
	if es, ok := m.store.(EffectStore); ok {
		err = es.UpdateEffects(ctx, func(st *State) (Effects, error) {
			var err error
			eff, err = change(st)
			return eff, err
		})
	} else {
		err = m.store.Update(ctx, func(st *State) error {
			var err error
			eff, err = change(st)
			return err
		})
	}
	if err != nil {
		var f *failure
		if !errors.As(err, &f) {
			return m.storeFailure("PERSISTENT RESERVE OUT", p, err)
		}
		m.log.Debug("persistent reserve out refused", "action", serviceActionName(req.sa),
			"initiator", p.InitiatorPort, "target", p.TargetPort, "status", f.out.Status,
			"asc", f.out.ASC, "ascq", f.out.ASCQ)
		return f.out
	}
	m.log.Debug("persistent reserve out", "action", serviceActionName(req.sa),
		"initiator", p.InitiatorPort, "target", p.TargetPort, "unit_attentions", len(eff.UAs))
	return eff.outcome(good())
}

// portResolver resolves a relative target port identifier for REGISTER
// AND MOVE: through the configured resolver, else from the ports this
// logical unit already knows.
func (m *Manager) portResolver(st *State, p Port) portResolver {
	return func(rel uint16) (string, bool) {
		if m.resolve != nil {
			if tp, ok := m.resolve(rel); ok {
				return tp, true
			}
		}
		if rel == p.RelativePortID && p.TargetPort != "" {
			return p.TargetPort, true
		}
		for _, r := range st.Registrations {
			if r.Port.RelativePortID == rel && r.Port.TargetPort != "" {
				return r.Port.TargetPort, true
			}
		}
		return "", false
	}
}

func initiatorPorts(ports []Port) []string {
	var out []string
	for _, p := range ports {
		seen := false
		for _, s := range out {
			if SameName(s, p.InitiatorPort) {
				seen = true
				break
			}
		}
		if !seen {
			out = append(out, p.InitiatorPort)
		}
	}
	return out
}

// Reserve executes SPC-2 RESERVE(6) or RESERVE(10).
func (m *Manager) Reserve(ctx context.Context, p Port) Outcome {
	return m.legacy(ctx, "RESERVE", p, legacyReserve)
}

// Release executes SPC-2 RELEASE(6) or RELEASE(10).
func (m *Manager) Release(ctx context.Context, p Port) Outcome {
	return m.legacy(ctx, "RELEASE", p, legacyRelease)
}

func (m *Manager) legacy(ctx context.Context, name string, p Port, fn func(*State, Port) error) Outcome {
	err := m.store.Update(ctx, func(st *State) error { return fn(st, p) })
	if err != nil {
		var f *failure
		if !errors.As(err, &f) {
			return m.storeFailure(name, p, err)
		}
		return f.out
	}
	return good()
}

// Conflict reports whether a command of class a from p must end with
// RESERVATION CONFLICT.
func (m *Manager) Conflict(ctx context.Context, p Port, a Access) (bool, error) {
	if a == AccessAllowed {
		return false, nil
	}
	st, err := m.store.Get(ctx)
	if err != nil {
		return false, err
	}
	return conflicts(st, p, a), nil
}

// NexusLoss releases the SPC-2 reservation p holds, if any: an I_T nexus
// loss ends it. Persistent reservations are not affected.
func (m *Manager) NexusLoss(ctx context.Context, p Port) {
	m.dropLegacy(ctx, "I_T nexus loss", func(st *State) bool { return st.holdsLegacy(p) })
}

// Reset releases the SPC-2 reservation after a logical unit reset or a
// target reset. Persistent reservations are not affected.
func (m *Manager) Reset(ctx context.Context) {
	m.dropLegacy(ctx, "reset", func(st *State) bool { return st.Legacy != nil })
}

func (m *Manager) dropLegacy(ctx context.Context, why string, applies func(*State) bool) {
	st, err := m.store.Get(ctx)
	if err == nil && !applies(st) {
		return
	}
	err = m.store.Update(ctx, func(st *State) error {
		if !applies(st) {
			return errUnchanged
		}
		st.Legacy = nil
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		m.log.Warn("could not release SPC-2 reservation", "reason", why, "err", err)
	}
}

func (m *Manager) storeFailure(cmd string, p Port, err error) Outcome {
	m.log.Warn("reservation state unavailable", "command", cmd,
		"initiator", p.InitiatorPort, "target", p.TargetPort, "err", err)
	return outcomeOf(err)
}
