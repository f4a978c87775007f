package reconcile

import (
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

// masking turns the LUN views of a target's ACLs into the SCSI target's
// masking: an ACL with a list sees exactly it (none when empty); an ACL
// without one, and an initiator without an ACL (admitted by
// AllowAnyInitiator), sees every LUN.
func masking(t config.Target) scsi.Masking {
	m := scsi.Masking{}
	for _, a := range t.ACLs {
		if ids, all := a.View(); !all {
			m[a.InitiatorIQN] = append([]uint64{}, ids...)
		}
	}
	return m
}
