package node

// admission is whether this gateway may admit commands, and when it may
// replace a Ceph client that was blocklisted. Run's goroutine owns it.
//
// A gateway that may have been superseded serves nothing until etcd has
// told it what changed: its lease ended (etcd says so once it answers
// again; peers may have taken its disks over), or its Ceph client was
// blocklisted (somebody took a disk over, or a write of its own timed
// out). It then registers again if needed, re-reads owners/ and pr/, and
// only then connects a new Ceph client. An etcd that nobody can reach
// changes nothing: no peer can take anything over without it, and every
// takeover blocklists the previous owner first.
type admission struct {
	// leaseGone: etcd said the liveness lease ended; not registered again.
	leaseGone bool
	// stale: owners/ and pr/ not read again since the lease ended or the
	// client was fenced.
	stale bool
	// fenced: the Ceph client is blocklisted and not replaced yet.
	fenced bool
	// gen counts the events that make the view stale, so that a reload
	// that started before one of them does not count as after it.
	gen uint64
}

type admissionEvent int

const (
	evLeaseGone admissionEvent = iota
	evRegistered
	evFenced
	evReplaced
)

// next is the admission after ev.
func (a admission) next(ev admissionEvent) admission {
	switch ev {
	case evLeaseGone:
		a.leaseGone, a.stale = true, true
		a.gen++
	case evRegistered:
		a.leaseGone = false
	case evFenced:
		a.fenced, a.stale = true, true
		a.gen++
	case evReplaced:
		a.fenced = false
	}
	return a
}

// reloaded is the admission after owners/ and pr/ were read again by a
// reload that started at generation gen, while registered.
func (a admission) reloaded(gen uint64) admission {
	if gen == a.gen && !a.leaseGone {
		a.stale = false
	}
	return a
}

// admits reports whether commands may run.
func (a admission) admits() bool { return !a.leaseGone && !a.stale && !a.fenced }

// needsReload reports whether owners/ and pr/ must be read again now.
func (a admission) needsReload() bool { return a.stale && !a.leaseGone }

// mayReconnect reports whether a blocklisted client may be replaced.
func (a admission) mayReconnect() bool { return a.fenced && !a.leaseGone && !a.stale }
