// Package reconcile turns a configuration model into running targets,
// logical units and ACLs. Apply compares the wanted model with what runs
// and changes only the difference, so a session whose target, LUNs and
// ACL entry are untouched by a change keeps running.
package reconcile

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
	"github.com/rbdgw/rbdgw/gateway/metrics"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Opener opens the image of a disk definition.
type Opener func(d config.Disk) (rbdbackend.Image, error)

// Server is the part of the iSCSI server the reconciler drives.
type Server interface {
	SetTarget(spec iscsi.TargetSpec) error
	RemoveTarget(iqn string)
	SetDiscoveryAuth(c *login.Credentials)
}

// Options configure a Reconciler.
type Options struct {
	Server Server
	Open   Opener
	Logger *slog.Logger
	// StateDir keeps persistent reservations with APTPL across restarts
	// (one file per disk); empty keeps them in memory only.
	StateDir string
	// Revision is the product revision reported in INQUIRY.
	Revision string
	// ALUA, when set, supplies the access states of every target.
	ALUA scsi.ALUAProvider
	// PortGroupID and RelativePortID identify this gateway's target port
	// (default 1 and 1: a standalone gateway).
	PortGroupID, RelativePortID uint16
	// PRStore, when set, supplies the reservation state of each disk (a
	// cluster gateway shares it with the other gateways); StateDir is then
	// not used.
	PRStore func(d config.Disk) (pr.Store, error)
	// TargetPortals, when set, gives the portals a target advertises in
	// SendTargets (a cluster gateway lists every live gateway's portals,
	// each "ip:port,tag"); otherwise the configuration's portals.
	TargetPortals func(iqn string) []string
	// Metrics, when set, gets the labels of every mapped LUN (the iSCSI
	// server counts its commands there).
	Metrics *metrics.Registry
}

// Reconciler owns the running disks and targets. Apply may be called from
// any goroutine; calls are serialised.
type Reconciler struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	disks   map[string]*disk
	targets map[string]*target
	wwns    wwnRegistry // default WWNs recorded in StateDir (identity.go)
}

type disk struct {
	spec config.Disk
	img  rbdbackend.Image
	lu   *scsi.LU
}

type target struct {
	dev  *scsi.Target
	luns map[uint64]*disk
}

// New returns a Reconciler with nothing running.
func New(opts Options) *Reconciler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PortGroupID == 0 {
		opts.PortGroupID = 1
	}
	if opts.RelativePortID == 0 {
		opts.RelativePortID = 1
	}
	return &Reconciler{
		opts:    opts,
		log:     opts.Logger,
		disks:   make(map[string]*disk),
		targets: make(map[string]*target),
	}
}

// Apply makes the running state match cfg. A disk that cannot be opened is
// reported in the returned error and left out (with its LUNs); everything
// else is applied, so one broken image does not take the gateway down.
func (r *Reconciler) Apply(cfg *config.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	r.prepareWWNs()
	defer r.wwnsApplied()

	wanted := make(map[string]*disk, len(cfg.Disks))
	for _, spec := range cfg.Disks {
		d, err := r.applyDisk(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("disk %q: %w", spec.Name, err))
			continue
		}
		wanted[spec.Name] = d
	}

	seen := make(map[string]bool, len(cfg.Targets))
	for _, t := range cfg.Targets {
		seen[t.IQN] = true
		r.warnNameOnlyAccess(t)
		if err := r.applyTarget(cfg, t, wanted); err != nil {
			errs = append(errs, fmt.Errorf("target %q: %w", t.IQN, err))
		}
	}
	for iqn, t := range r.targets {
		if !seen[iqn] {
			r.opts.Server.RemoveTarget(iqn)
			for lun := range t.luns {
				t.dev.RemoveLU(lun)
				r.opts.Metrics.RemoveLUN(iqn, lun)
			}
			delete(r.targets, iqn)
			r.log.Info("target removed", "target", iqn)
		}
	}
	// Disks no longer wanted are closed only after no target maps them.
	for name, d := range r.disks {
		if wanted[name] != d {
			r.closeDisk(d)
			if wanted[name] == nil {
				delete(r.disks, name)
				r.log.Info("disk removed", "disk", name)
			}
		}
	}
	for name, d := range wanted {
		r.disks[name] = d
	}
	r.opts.Server.SetDiscoveryAuth(credentials(cfg.DiscoveryAuth))
	return errors.Join(errs...)
}

// Close removes every target and closes every disk.
func (r *Reconciler) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for iqn := range r.targets {
		r.opts.Server.RemoveTarget(iqn)
	}
	r.targets = map[string]*target{}
	for _, d := range r.disks {
		r.closeDisk(d)
	}
	r.disks = map[string]*disk{}
}

// applyDisk returns the running disk for spec: the current one when its
// identity is unchanged (after growing it if the size grew), a newly
// opened one otherwise.
func (r *Reconciler) applyDisk(spec config.Disk) (*disk, error) {
	if cur := r.disks[spec.Name]; cur != nil && sameIdentity(cur.spec, spec) {
		if spec.Size > cur.img.Size() {
			rs := rbdbackend.CapabilitiesOf(cur.img).Resizer
			if rs == nil {
				return cur, fmt.Errorf("cannot grow: the backend does not resize")
			}
			if err := rs.Resize(spec.Size); err != nil {
				return cur, fmt.Errorf("grow to %d bytes: %w", spec.Size, err)
			}
			cur.lu.Resized()
			r.log.Info("disk grown", "disk", spec.Name, "size", spec.Size)
		}
		cur.spec = spec
		return cur, nil
	}
	// The identity is fixed (and recorded) before anything can fail.
	wwn, err := r.defaultWWN(spec)
	if err != nil {
		return nil, err
	}
	img, err := r.opts.Open(spec)
	if err != nil {
		return nil, err
	}
	store, err := r.prStore(spec)
	if err != nil {
		img.Close()
		return nil, err
	}
	lu, err := scsi.NewLU(img, scsi.LUConfig{
		Name:              spec.Name,
		BlockSize:         spec.BlockSize,
		PhysicalBlockSize: spec.PhysicalBlockSize,
		Serial:            spec.Serial,
		WWN:               wwn,
		ReadOnly:          spec.ReadOnly,
		Revision:          r.opts.Revision,
		PR:                store,
		Logger:            r.log,
	})
	if err != nil {
		img.Close()
		return nil, err
	}
	if w := rbdbackend.CapabilitiesOf(img).SizeWatcher; w != nil {
		// A resize made with the rbd tool (or by another gateway) reaches
		// initiators as CAPACITY DATA HAS CHANGED without a reload.
		w.OnResize(func(int64) { lu.Resized() })
	}
	r.log.Info("disk opened", "disk", spec.Name, "backend", spec.Backend, "size", img.Size())
	return &disk{spec: spec, img: img, lu: lu}, nil
}

func (r *Reconciler) prStore(spec config.Disk) (pr.Store, error) {
	if r.opts.PRStore != nil {
		return r.opts.PRStore(spec)
	}
	name := spec.Name
	if r.opts.StateDir == "" {
		return pr.NewMemoryStore(), nil
	}
	dir := filepath.Join(r.opts.StateDir, "pr")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return pr.NewFileStore(filepath.Join(dir, name+".json"))
}

func (r *Reconciler) closeDisk(d *disk) {
	d.lu.Close()
	if err := d.img.Close(); err != nil {
		r.log.Warn("closing disk", "disk", d.spec.Name, "err", err)
	}
}

// sameIdentity reports whether two definitions describe the same image
// presented the same way; only the size may differ (growth).
func sameIdentity(a, b config.Disk) bool {
	a.Size, b.Size = 0, 0
	return a == b
}

func (r *Reconciler) applyTarget(cfg *config.Config, t config.Target, disks map[string]*disk) error {
	cur := r.targets[t.IQN]
	if cur == nil {
		cur = &target{
			dev: scsi.NewTarget(t.IQN, scsi.TargetOptions{
				ALUA:   r.opts.ALUA,
				Logger: r.log,
			}),
			luns: make(map[uint64]*disk),
		}
		r.targets[t.IQN] = cur
		r.log.Info("target added", "target", t.IQN)
	}
	// Views first: a LUN mapped below is never visible to an initiator
	// whose new view leaves it out.
	cur.dev.SetMasking(masking(t))
	var errs []error
	want := make(map[uint64]*disk, len(t.LUNs))
	for _, l := range t.LUNs {
		d := disks[l.Disk]
		if d == nil {
			errs = append(errs, fmt.Errorf("lun %d: disk %q is not available", l.ID, l.Disk))
			continue
		}
		want[l.ID] = d
	}
	for id, d := range cur.luns {
		if want[id] != d {
			cur.dev.RemoveLU(id)
			delete(cur.luns, id)
			r.opts.Metrics.RemoveLUN(t.IQN, id)
		}
	}
	for id, d := range want {
		if cur.luns[id] != d {
			// Counters first: the LUN's first command finds them.
			r.opts.Metrics.SetLUN(metrics.LUNInfo{Target: t.IQN, LUN: id,
				Disk: d.spec.Name, Pool: d.spec.Pool, Image: d.spec.Image, Backend: d.spec.Backend})
			cur.dev.SetLU(id, d.lu)
			cur.luns[id] = d
		}
	}
	portals := cfg.Portals
	if r.opts.TargetPortals != nil {
		portals = r.opts.TargetPortals(t.IQN)
	}
	err := r.opts.Server.SetTarget(iscsi.TargetSpec{
		IQN:            t.IQN,
		Device:         cur.dev,
		TPGT:           t.TPGT,
		RelativePortID: r.opts.RelativePortID,
		PortGroupID:    r.opts.PortGroupID,
		Portals:        portals,
		Access:         accessPolicy(t),
		Addresses:      r.addressPolicy(t),
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// accessPolicy builds the login decision of a target from its ACL: listed
// initiators use their own CHAP credentials or else the target's; others
// are admitted only when the target allows any initiator.
func accessPolicy(t config.Target) func(string) (bool, *login.Credentials) {
	acl := make(map[string]*config.CHAP, len(t.ACLs))
	for _, a := range t.ACLs {
		acl[a.InitiatorIQN] = a.CHAP
	}
	targetCHAP := t.CHAP
	anyone := t.AllowAnyInitiator
	return func(initiator string) (bool, *login.Credentials) {
		chap, listed := acl[initiator]
		if !listed && !anyone {
			return false, nil
		}
		if chap == nil {
			chap = targetCHAP
		}
		return true, credentials(chap)
	}
}

// addressPolicy gives the source addresses each listed initiator may log
// in from; nil (any) for an initiator whose ACL lists none, or that has no
// ACL. The configuration was validated; a list that does not parse anyway
// admits no address (the zero Prefix contains none), and is logged.
func (r *Reconciler) addressPolicy(t config.Target) func(string) []netip.Prefix {
	bound := map[string][]netip.Prefix{}
	for _, a := range t.ACLs {
		ps, err := config.ParseAddresses(a.Addresses)
		if err != nil {
			r.log.Error("acl addresses unusable: the initiator is refused from every address",
				"target", t.IQN, "initiator", a.InitiatorIQN, "err", err)
			ps = []netip.Prefix{{}}
		}
		if len(ps) > 0 {
			bound[a.InitiatorIQN] = ps
		}
	}
	if len(bound) == 0 {
		return nil
	}
	return func(initiator string) []netip.Prefix { return bound[initiator] }
}

func credentials(c *config.CHAP) *login.Credentials {
	if c == nil {
		return nil
	}
	return &login.Credentials{User: c.User, Secret: c.Secret, MutualUser: c.MutualUser, MutualSecret: c.MutualSecret}
}
