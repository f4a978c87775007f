package alua

import "github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"

// PeerReservation applies the effects of a reservation change made
// through another gateway (unit attentions, tasks aborted by PREEMPT AND
// ABORT) to the logical unit of disk here, and returns once the aborted
// tasks are done. A logical unit no command has reached has no I_T nexus
// to apply them to.
func (p *Provider) PeerReservation(disk string, eff pr.Effects) {
	if lu := p.lu(disk); lu != nil {
		lu.PeerReservation(eff)
	}
}
