package scsi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Vendor and product identification reported by INQUIRY.
const (
	VendorID  = "RBDGW"
	ProductID = "RBD disk"
)

// DefaultCompanyID is the 24-bit IEEE company identifier placed in the
// NAA-6 designator when the configuration names none. It is a CID (the X
// bit of the first octet is set), so it cannot collide with an OUI.
const DefaultCompanyID uint32 = 0x6a5d37

// Limits are the block limits a logical unit advertises in the Block Limits
// VPD page and enforces. Zero fields take the defaults below.
type Limits struct {
	// MaxTransferBytes bounds one READ, WRITE, VERIFY or WRITE AND VERIFY
	// (default 8 MiB).
	MaxTransferBytes uint32
	// OptimalTransferBytes is the preferred I/O size (default 4 MiB, one
	// RBD object).
	OptimalTransferBytes uint32
	// MaxWriteSameBlocks bounds one WRITE SAME (default 65535 blocks).
	MaxWriteSameBlocks uint32
	// MaxCompareAndWriteBlocks bounds COMPARE AND WRITE (default 1, what
	// VMware ATS uses and what an RBD object-level compare supports).
	MaxCompareAndWriteBlocks uint8
	// MaxUnmapBlocks bounds the blocks of one UNMAP descriptor (default
	// 1 Mi blocks).
	MaxUnmapBlocks uint32
	// MaxUnmapDescriptors bounds the descriptors of one UNMAP (default 256).
	MaxUnmapDescriptors uint32
}

// withDefaults fills the zero fields and keeps the sizes consistent with
// the block sizes: the optimal transfer is a whole number of physical
// blocks (the advertised granularity) unless the maximum transfer is
// smaller than one, and one UNMAP descriptor may cover at least one
// physical block.
func (l Limits) withDefaults(blockSize, physicalBlockSize uint32) Limits {
	if l.MaxTransferBytes == 0 {
		l.MaxTransferBytes = 8 << 20
	}
	if l.MaxTransferBytes < blockSize {
		l.MaxTransferBytes = blockSize
	}
	if l.OptimalTransferBytes == 0 {
		l.OptimalTransferBytes = min(4<<20, l.MaxTransferBytes)
	}
	switch {
	case l.OptimalTransferBytes >= physicalBlockSize:
		l.OptimalTransferBytes -= l.OptimalTransferBytes % physicalBlockSize
	case l.MaxTransferBytes >= physicalBlockSize:
		l.OptimalTransferBytes = physicalBlockSize
	}
	if l.MaxWriteSameBlocks == 0 {
		l.MaxWriteSameBlocks = 0xffff
	}
	if l.MaxCompareAndWriteBlocks == 0 {
		l.MaxCompareAndWriteBlocks = 1
	}
	if l.MaxUnmapBlocks == 0 {
		l.MaxUnmapBlocks = 1 << 20
	}
	l.MaxUnmapBlocks = max(l.MaxUnmapBlocks, physicalBlockSize/blockSize)
	if l.MaxUnmapDescriptors == 0 {
		l.MaxUnmapDescriptors = 256
	}
	return l
}

// LUConfig describes a logical unit.
type LUConfig struct {
	// Name identifies the disk in logs (and seeds WWN and serial when they
	// are empty).
	Name string
	// BlockSize is the logical block length: a power of two from 512 to
	// 65536 (default 512).
	BlockSize uint32
	// PhysicalBlockSize is the physical block length reported to initiators
	// (READ CAPACITY(16), Block Limits VPD): a power of two multiple of
	// BlockSize, at most 2^15 logical blocks. Default: 4096, or BlockSize
	// when that is larger. RBD allocates, and modern disks write, in units
	// of 4 KiB: initiators that know it align their I/O and avoid
	// read-modify-write cycles below the gateway.
	PhysicalBlockSize uint32
	// Serial is the unit serial number (VPD page 80h); default: the WWN.
	Serial string
	// WWN is 16 hex digits, the vendor specific identifier extension of the
	// NAA-6 designator. It must be the same on every gateway that exports
	// the disk. Default: derived from Name (for tests and embedders; the
	// daemon always passes one, see reconcile/identity.go).
	WWN string
	// CompanyID is the IEEE company identifier of the NAA-6 designator
	// (default DefaultCompanyID).
	CompanyID uint32
	// ReadOnly logical units refuse writes with DATA PROTECT.
	ReadOnly bool
	// Revision is the product revision level (at most 4 characters).
	Revision string
	// PR holds the reservation state; default: in memory.
	PR pr.Store
	// Limits are the block limits; zero fields take defaults.
	Limits Limits
	// Logger receives the logical unit's logs (default slog.Default()).
	Logger *slog.Logger
}

// DefaultRevision is the product revision reported when LUConfig.Revision is
// empty.
const DefaultRevision = "0001"

// DefaultPhysicalBlockSize is the physical block length reported when
// LUConfig.PhysicalBlockSize is zero and the logical block is smaller.
const DefaultPhysicalBlockSize = 4096

// maxPhysicalExponent bounds LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT, a
// 4-bit field of READ CAPACITY(16).
const maxPhysicalExponent = 15

// checkPhysicalBlockSize verifies that physical is a power of two multiple
// of the logical block size that READ CAPACITY(16) can express.
func checkPhysicalBlockSize(logical, physical uint32) error {
	if physical < logical || physical&(physical-1) != 0 || physical/logical > 1<<maxPhysicalExponent {
		return fmt.Errorf("scsi: physical block size %d: must be a power of two from the block size %d to %d",
			physical, logical, uint64(logical)<<maxPhysicalExponent)
	}
	return nil
}

// LU is a logical unit: a block device backed by an rbdbackend.Image. One
// LU may be mapped into several targets.
type LU struct {
	cfg    LUConfig
	img    rbdbackend.Image
	log    *slog.Logger
	naa    [16]byte
	blocks atomic.Uint64 // capacity in logical blocks

	// Capabilities of the image (rbdbackend.CapabilitiesOf), asked once.
	caps       capability
	flusher    rbdbackend.Flusher
	discarder  rbdbackend.Discarder
	writeSamer rbdbackend.WriteSamer
	caw        rbdbackend.CompareAndWriter
	alloc      rbdbackend.AllocationReporter
	prefetcher rbdbackend.Prefetcher
	// async starts plain reads and writes without a goroutine waiting
	// (Target.Start); nil when the image cannot.
	async  rbdbackend.AsyncIO
	lbprz  bool // unmapped blocks read as zeroes
	atomic atomicLimits

	pr    *pr.Manager
	tasks taskSet

	// mu guards the per-nexus state and the mode pages. It is never held
	// across backend I/O.
	mu      sync.Mutex
	nexuses map[string]*nexusState
	// pendingUAs counts the unit attentions queued on all nexuses, so that
	// commands skip mu when there are none.
	pendingUAs atomic.Int64
	mode       modePages
	// modeFlags mirrors the mode page bits the I/O path needs, so that
	// reads and writes do not take mu.
	modeFlags atomic.Uint32

	// rmwMu serialises the read-modify-write commands (COMPARE AND WRITE
	// without a backend compare-and-write, ORWRITE) among themselves.
	rmwMu sync.Mutex

	closed atomic.Bool
}

// nexusState is what a logical unit keeps for one I_T nexus. Guarded by
// LU.mu.
type nexusState struct {
	nexus   *Nexus // a copy owned by the logical unit
	port    pr.Port
	ua      uaQueue
	prevent bool
	copies  copyResults
}

// NewLU creates a logical unit over img.
func NewLU(img rbdbackend.Image, cfg LUConfig) (*LU, error) {
	if img == nil {
		return nil, errors.New("scsi: logical unit without an image")
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 512
	}
	if cfg.BlockSize < 512 || cfg.BlockSize > 65536 || cfg.BlockSize&(cfg.BlockSize-1) != 0 {
		return nil, fmt.Errorf("scsi: block size %d: must be a power of two from 512 to 65536", cfg.BlockSize)
	}
	if cfg.PhysicalBlockSize == 0 {
		cfg.PhysicalBlockSize = max(cfg.BlockSize, DefaultPhysicalBlockSize)
	}
	if err := checkPhysicalBlockSize(cfg.BlockSize, cfg.PhysicalBlockSize); err != nil {
		return nil, err
	}
	if cfg.WWN == "" {
		h := fnv.New64a()
		h.Write([]byte(cfg.Name))
		cfg.WWN = fmt.Sprintf("%016x", h.Sum64())
	}
	wwn, err := hex.DecodeString(cfg.WWN)
	if err != nil || len(wwn) != 8 {
		return nil, fmt.Errorf("scsi: WWN %q: must be 16 hex digits", cfg.WWN)
	}
	cfg.WWN = strings.ToLower(cfg.WWN)
	if cfg.Serial == "" {
		cfg.Serial = cfg.WWN
	}
	if !printableASCII(cfg.Serial) || len(cfg.Serial) > 252 {
		return nil, fmt.Errorf("scsi: serial %q: must be printable ASCII, at most 252 bytes", cfg.Serial)
	}
	if cfg.Revision == "" {
		cfg.Revision = DefaultRevision
	}
	if !printableASCII(cfg.Revision) || len(cfg.Revision) > 4 {
		return nil, fmt.Errorf("scsi: revision %q: at most 4 printable ASCII characters", cfg.Revision)
	}
	if cfg.CompanyID == 0 {
		cfg.CompanyID = DefaultCompanyID
	}
	if cfg.CompanyID > 0xffffff {
		return nil, fmt.Errorf("scsi: company ID %#x: must fit 24 bits", cfg.CompanyID)
	}
	if cfg.PR == nil {
		cfg.PR = pr.NewMemoryStore()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Limits = cfg.Limits.withDefaults(cfg.BlockSize, cfg.PhysicalBlockSize)

	lu := &LU{
		cfg:     cfg,
		img:     img,
		log:     cfg.Logger.With("lu", cfg.Name),
		nexuses: make(map[string]*nexusState),
	}
	lu.naa = naa6(cfg.CompanyID, wwn)
	lu.probeCapabilities()
	lu.blocks.Store(uint64(img.Size()) / uint64(cfg.BlockSize))
	lu.pr = pr.NewManager(cfg.PR, pr.WithLogger(lu.log), pr.WithTargetPorts(lu.targetPortOf))
	lu.tasks.init()
	lu.mode.init(lu)
	lu.syncModeFlags()
	return lu, nil
}

// naa6 builds the NAA IEEE Registered Extended designator (SPC-4 7.8.6.6.5):
// NAA 6h, the company ID, a zero vendor specific identifier and the WWN as
// the identifier extension.
func naa6(companyID uint32, wwn []byte) [16]byte {
	var d [16]byte
	d[0] = 0x60 | byte(companyID>>20)&0x0f
	d[1] = byte(companyID >> 12)
	d[2] = byte(companyID >> 4)
	d[3] = byte(companyID<<4) & 0xf0
	copy(d[8:], wwn)
	return d
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (lu *LU) probeCapabilities() {
	c := rbdbackend.CapabilitiesOf(lu.img)
	lu.flusher = c.Flusher
	lu.writeSamer = c.WriteSamer
	lu.caw = c.CompareAndWriter
	lu.alloc = c.AllocationReporter
	lu.prefetcher = c.Prefetcher
	lu.async = rbdbackend.AsyncOf(lu.img)
	if c.Discarder != nil {
		lu.discarder = c.Discarder
		lu.caps |= capDiscard
		lu.lbprz = c.DiscardZeroer == nil || c.DiscardZeroer.DiscardZeroes()
	}
	if w := c.AtomicWriter; w != nil {
		bs := lu.cfg.BlockSize
		if l, ok := atomicLimitsOf(w, bs, lu.cfg.Limits.MaxTransferBytes/bs); ok {
			lu.atomic = l
			lu.caps |= capAtomicWrite
		}
	}
}

// Name is the configured name.
func (lu *LU) Name() string { return lu.cfg.Name }

// WWN is the 16-hex-digit identifier of the logical unit.
func (lu *LU) WWN() string { return lu.cfg.WWN }

// BlockSize is the logical block length in bytes.
func (lu *LU) BlockSize() uint32 { return lu.cfg.BlockSize }

// PhysicalBlockSize is the reported physical block length in bytes.
func (lu *LU) PhysicalBlockSize() uint32 { return lu.cfg.PhysicalBlockSize }

// blocksPerPhysical is the number of logical blocks in a physical block.
func (lu *LU) blocksPerPhysical() uint32 { return lu.cfg.PhysicalBlockSize / lu.cfg.BlockSize }

// Blocks is the capacity in logical blocks.
func (lu *LU) Blocks() uint64 { return lu.blocks.Load() }

// Image is the backing image.
func (lu *LU) Image() rbdbackend.Image { return lu.img }

// Resized re-reads the size of the image and, when the capacity changed,
// establishes CAPACITY DATA HAS CHANGED on every I_T nexus.
func (lu *LU) Resized() {
	n := uint64(lu.img.Size()) / uint64(lu.cfg.BlockSize)
	if lu.blocks.Swap(n) == n {
		return
	}
	lu.log.Info("capacity changed", "blocks", n)
	lu.queueUA(ascCapacityChanged, nil)
}

// AccessStateChanged establishes ASYMMETRIC ACCESS STATE CHANGED on every I_T
// nexus; the ALUA provider calls it after the state of a target port group
// of this logical unit changed.
func (lu *LU) AccessStateChanged() {
	lu.queueUA(ascAsymmetricAccessChanged, nil)
}

// Close makes the logical unit refuse new commands (EXTENDED COPY included).
// It does not close the image, which belongs to the caller.
func (lu *LU) Close() {
	lu.closed.Store(true)
}

// attach makes sure n has state on this logical unit; code, when not zero,
// is established as a unit attention.
func (lu *LU) attach(n *Nexus, code asc) *nexusState {
	lu.mu.Lock()
	defer lu.mu.Unlock()
	nx := lu.nexusLocked(n)
	if code != 0 {
		lu.addUALocked(nx, code)
	}
	return nx
}

// addUALocked establishes code on nx. lu.mu must be held.
func (lu *LU) addUALocked(nx *nexusState, code asc) {
	before := nx.ua.len()
	nx.ua.add(code)
	lu.pendingUAs.Add(int64(nx.ua.len() - before))
}

// nexusLocked returns the state of n, creating it. lu.mu must be held.
func (lu *LU) nexusLocked(n *Nexus) *nexusState {
	key := n.Key()
	nx := lu.nexuses[key]
	if nx == nil {
		nx = &nexusState{nexus: n.clone(), port: portOf(n)}
		lu.nexuses[key] = nx
	}
	return nx
}

// detach forgets n (I_T nexus loss) and reports whether it was known.
func (lu *LU) detach(n *Nexus) bool {
	lu.mu.Lock()
	defer lu.mu.Unlock()
	key := n.Key()
	nx, ok := lu.nexuses[key]
	if ok {
		lu.pendingUAs.Add(-int64(nx.ua.len()))
		delete(lu.nexuses, key)
	}
	return ok
}

// queueUA establishes a unit attention on every I_T nexus except skip.
func (lu *LU) queueUA(code asc, skip *Nexus) {
	lu.mu.Lock()
	defer lu.mu.Unlock()
	skipKey := ""
	if skip != nil {
		skipKey = skip.Key()
	}
	for key, nx := range lu.nexuses {
		if key != skipKey {
			lu.addUALocked(nx, code)
		}
	}
}

// popUA reports and clears the next unit attention of n.
func (lu *LU) popUA(n *Nexus) (asc, bool) {
	if lu.pendingUAs.Load() == 0 {
		return 0, false
	}
	lu.mu.Lock()
	defer lu.mu.Unlock()
	nx := lu.nexuses[n.Key()]
	if nx == nil {
		return 0, false
	}
	code, ok := nx.ua.pop()
	if ok {
		lu.pendingUAs.Add(-1)
	}
	return code, ok
}

// clearUA clears one pending condition of n.
func (lu *LU) clearUA(n *Nexus, code asc) {
	lu.mu.Lock()
	defer lu.mu.Unlock()
	if nx := lu.nexuses[n.Key()]; nx != nil {
		before := nx.ua.len()
		nx.ua.remove(code)
		lu.pendingUAs.Add(int64(nx.ua.len() - before))
	}
}

// targetPortOf resolves a relative target port identifier to the name of a
// target port known from the I_T nexuses of this logical unit (REGISTER AND
// MOVE).
func (lu *LU) targetPortOf(rel uint16) (string, bool) {
	lu.mu.Lock()
	defer lu.mu.Unlock()
	for _, nx := range lu.nexuses {
		if nx.nexus.RelativePortID == rel {
			return nx.port.TargetPort, true
		}
	}
	return "", false
}

// reset is the logical unit part of a LOGICAL UNIT RESET or target reset:
// SPC-2 reservations end, mode parameters return to their defaults,
// medium removal is allowed again, and every I_T nexus gets code.
func (lu *LU) reset(ctx context.Context, code asc) {
	lu.pr.Reset(ctx)
	lu.mu.Lock()
	lu.mode.init(lu)
	for _, nx := range lu.nexuses {
		nx.prevent = false
		lu.addUALocked(nx, code)
	}
	lu.mu.Unlock()
	lu.syncModeFlags()
}

// portOf is the identity of n for the reservation rules.
func portOf(n *Nexus) pr.Port {
	return pr.Port{
		InitiatorPort:  n.InitiatorPort(),
		InitiatorName:  n.InitiatorName,
		TargetPort:     n.TargetPort(),
		RelativePortID: n.RelativePortID,
	}
}

// writeProtected reports whether writes must end with DATA PROTECT, and
// with which code.
func (lu *LU) writeProtected() *senseError {
	switch {
	case lu.cfg.ReadOnly:
		return newSense(senseDataProtect, ascWriteProtected)
	case lu.modeFlags.Load()&modeSWP != 0:
		return newSense(senseDataProtect, ascSoftwareWriteProtected)
	}
	return nil
}

// descriptorSense reports whether sense data uses the descriptor format
// (control mode page D_SENSE).
func (lu *LU) descriptorSense() bool {
	return lu != nil && lu.modeFlags.Load()&modeDSense != 0
}
