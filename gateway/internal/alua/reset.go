package alua

import (
	"context"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

// resetTimeout bounds the propagation of one logical unit reset.
const resetTimeout = 10 * time.Second

// SetResetter sets how a logical unit reset on this gateway reaches the
// others (prstore: the reset is counted in the disk's shared state, and the
// call returns once the other gateways applied it).
func (p *Provider) SetResetter(fn func(ctx context.Context, disk string) error) {
	p.resetter.Store(&fn)
}

// LogicalUnitReset implements scsi.ResetNotifier.
func (p *Provider) LogicalUnitReset(lu *scsi.LU) {
	fn := p.resetter.Load()
	if fn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), resetTimeout)
	defer cancel()
	if err := (*fn)(ctx, lu.Name()); err != nil {
		p.log.Warn("logical unit reset not propagated to the other gateways", "disk", lu.Name(), "err", err)
	}
}

// PeerReset applies a reset made through another gateway to the logical
// unit of disk here. The provider knows a logical unit once a command has
// reached it; one that no command has reached since this gateway opened it
// is skipped (its I_T nexuses still hold the unit attention of their
// login, or never used it).
func (p *Provider) PeerReset(disk string) {
	if lu := p.lu(disk); lu != nil {
		lu.PeerReset()
	}
}

var _ scsi.ResetNotifier = (*Provider)(nil)
