package pr

import "context"

// Effects are what a PERSISTENT RESERVE OUT does to I_T nexuses besides
// changing the state: unit attentions to establish and, for PREEMPT AND
// ABORT, the nexuses whose tasks are aborted. The device server that
// executed the command applies them to its own nexuses from the Outcome;
// a store shared by several device servers (gateways) carries them to the
// others with the state (EffectStore).
type Effects struct {
	UAs []UnitAttention `json:"uas,omitempty"`
	// AbortNexuses are the I_T nexuses whose tasks are aborted, and
	// AbortTasksOf their initiator ports.
	AbortNexuses []Port   `json:"abort_nexuses,omitempty"`
	AbortTasksOf []string `json:"abort_tasks_of,omitempty"`
}

// Empty reports whether the effects touch no nexus.
func (e Effects) Empty() bool {
	return len(e.UAs) == 0 && len(e.AbortNexuses) == 0 && len(e.AbortTasksOf) == 0
}

// EffectStore is a Store shared by device servers in other processes. A
// change committed with UpdateEffects carries its effects; the store
// returns only once every other device server has applied the new state
// and its effects (or cannot reach the medium any more), so that a
// preempted initiator can neither run a new command nor finish an old one
// on another path after the command completed.
type EffectStore interface {
	Store
	UpdateEffects(ctx context.Context, fn func(st *State) (Effects, error)) error
}

// Outcome returns the effects as the Outcome fields the device server
// applies to its own nexuses.
func (e Effects) outcome(o Outcome) Outcome {
	o.UAs = e.UAs
	o.AbortNexuses = e.AbortNexuses
	o.AbortTasksOf = e.AbortTasksOf
	return o
}

// EffectsOf returns the effects an outcome carries.
func EffectsOf(o Outcome) Effects {
	return Effects{UAs: o.UAs, AbortNexuses: o.AbortNexuses, AbortTasksOf: o.AbortTasksOf}
}
