//go:build pacific

package rbd

// #include <rados/librados.h>
import "C"

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ceph/go-ceph/rados"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Config says how to reach the cluster. Zero values take the defaults.
type Config struct {
	// ConfPath is the ceph.conf to read; "" reads $CEPH_CONF or the
	// default search path.
	ConfPath string
	// User is the client id without "client." (default "admin").
	User string
	// Keyring overrides the keyring path from the configuration.
	Keyring string
	// OSDOpTimeout bounds every OSD operation (rados_osd_op_timeout;
	// default 30 s). It must exceed the time the cluster needs to mark a
	// dead OSD down, or I/O that only needed a remap fails.
	OSDOpTimeout time.Duration
	// MonOpTimeout bounds monitor commands (rados_mon_op_timeout; 30 s).
	MonOpTimeout time.Duration
	// MountTimeout bounds connecting (client_mount_timeout; 30 s).
	MountTimeout time.Duration
	// BlocklistExpiry is how long a client fenced by Blocklist or
	// BreakLock stays fenced (default 1 h). Clients that librbd fences by
	// itself get the mon's default (mon_osd_blocklist_default_expire).
	BlocklistExpiry time.Duration
	// Options are further Ceph options, applied last.
	Options map[string]string
	// Logger receives fencing and recovery events (default slog.Default).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.User == "" {
		c.User = "admin"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.OSDOpTimeout, 30*time.Second)
	def(&c.MonOpTimeout, 30*time.Second)
	def(&c.MountTimeout, 30*time.Second)
	def(&c.BlocklistExpiry, time.Hour)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// options are the Ceph settings every client of this package uses.
func (c Config) options() [][2]string {
	secs := func(d time.Duration) string { return strconv.Itoa(int((d + time.Second - 1) / time.Second)) }
	opts := [][2]string{
		// Several gateways may serve one image: a client-side cache would
		// return stale data on the others.
		{"rbd_cache", "false"},
		// Otherwise librbd skips the unaligned head and tail of a discard
		// and those bytes keep their old data; SCSI needs zeroes.
		{"rbd_skip_partial_discard", "false"},
		{"rados_osd_op_timeout", secs(c.OSDOpTimeout)},
		{"rados_mon_op_timeout", secs(c.MonOpTimeout)},
		{"client_mount_timeout", secs(c.MountTimeout)},
		// librbd must fence the owner of any lock it breaks, also when it
		// breaks a dead owner's lock by itself. Its expiry stays 0 (the
		// mon's mon_osd_blocklist_default_expire): librbd 16.2 sends any
		// other value as a JSON string, which the mon rejects (EINVAL), and
		// then the break fails.
		{"rbd_blocklist_on_break_lock", "true"},
		{"rbd_blocklist_expire_seconds", "0"},
		// The submitting thread does librbd's dispatch itself instead of
		// handing each request to librbd's io_context thread and waking
		// it (8-11 % less CPU per 4 KiB I/O, docs/performance.md). What
		// can then block the submitter is the Objecter's in-flight
		// throttle: a goroutine waiting for its request may block there;
		// a request started without a waiter (Image.start, from a
		// connection's serve loop) is started only far below it.
		{"rbd_non_blocking_aio", "false"},
	}
	if c.Keyring != "" {
		opts = append(opts, [2]string{"keyring", c.Keyring})
	}
	for _, k := range slices.Sorted(maps.Keys(c.Options)) {
		opts = append(opts, [2]string{k, c.Options[k]})
	}
	return opts
}

// Cluster is this process's rados client. Every image is opened through
// it. When the client is blocklisted (another gateway took an image's lock
// over), the Cluster notices on the first failed operation, connects a new
// client in the background and reopens every open image on it; nothing is
// ever sent through the fenced client again.
type Cluster struct {
	cfg Config
	log *slog.Logger

	// connMu guards conn, addr and gen. Readers hold it for as long as they
	// use conn directly (open, lifecycle calls), so a reconnect never shuts
	// down a client under them.
	connMu sync.RWMutex
	conn   *rados.Conn
	addr   string
	gen    uint64
	closed bool

	// fencedGen is the highest client generation known to be fenced;
	// handles of that generation or older must not be used.
	fencedGen atomic.Uint64

	imgMu  sync.Mutex
	images map[*Image]struct{}

	reconnectMu sync.Mutex // one reconnect at a time
	// onFenced, when set, replaces the automatic reconnect (OnFenced).
	onFenced   atomic.Pointer[func(addr string)]
	recovering atomic.Bool
	done       chan struct{}
	wg         sync.WaitGroup
}

// Connect creates the process's rados client and connects it.
func Connect(cfg Config) (*Cluster, error) {
	cfg = cfg.withDefaults()
	conn, addr, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:    cfg,
		log:    cfg.Logger,
		conn:   conn,
		addr:   addr,
		gen:    1,
		images: make(map[*Image]struct{}),
		done:   make(chan struct{}),
	}
	c.log.Info("rbd: connected", "client", cfg.User, "addr", addr)
	return c, nil
}

func dial(cfg Config) (*rados.Conn, string, error) {
	conn, err := rados.NewConnWithUser(cfg.User)
	if err != nil {
		return nil, "", cephError("create client", "", err, ctxAdmin)
	}
	if cfg.ConfPath != "" {
		err = conn.ReadConfigFile(cfg.ConfPath)
	} else {
		err = conn.ReadDefaultConfigFile()
	}
	if err != nil {
		conn.Shutdown()
		return nil, "", cephError("read config", "", err, ctxAdmin)
	}
	for _, o := range cfg.options() {
		if err := conn.SetConfigOption(o[0], o[1]); err != nil {
			conn.Shutdown()
			return nil, "", cephError("set option "+o[0], "", err, ctxAdmin)
		}
	}
	if err := conn.Connect(); err != nil {
		conn.Shutdown()
		return nil, "", cephError("connect", "", err, ctxAdmin)
	}
	addr, err := conn.GetAddrs()
	if err != nil {
		conn.Shutdown()
		return nil, "", cephError("get client address", "", err, ctxAdmin)
	}
	return conn, addr, nil
}

// radosHandle converts go-ceph's public cluster reference for the C shim.
func radosHandle(conn *rados.Conn) C.rados_t {
	return C.rados_t(unsafe.Pointer(conn.Cluster()))
}

// ClientAddr is the address of the current rados client
// ("ip:port/nonce"), the identity other gateways blocklist.
func (c *Cluster) ClientAddr() string {
	c.connMu.RLock()
	defer c.connMu.RUnlock()
	return c.addr
}

// Fenced reports whether the current client is known to be blocklisted
// (a reconnect is then pending or under way).
func (c *Cluster) Fenced() bool {
	c.connMu.RLock()
	defer c.connMu.RUnlock()
	return c.fencedGen.Load() >= c.gen
}

// withConn runs fn with the current client held against reconnects.
func (c *Cluster) withConn(fn func(conn *rados.Conn, gen uint64) error) error {
	c.connMu.RLock()
	defer c.connMu.RUnlock()
	if c.closed {
		return rbdbackend.ErrClosed
	}
	if c.fencedGen.Load() >= c.gen {
		return fmt.Errorf("rbd: client %s is blocklisted, reconnecting: %w", c.addr, rbdbackend.ErrLockLost)
	}
	return fn(c.conn, c.gen)
}

// Close closes every image still open and disconnects.
func (c *Cluster) Close() error {
	c.connMu.Lock()
	if c.closed {
		c.connMu.Unlock()
		return rbdbackend.ErrClosed
	}
	c.closed = true
	close(c.done)
	c.connMu.Unlock()
	c.wg.Wait()

	// An explicit Reconnect may still be moving images; let it finish.
	c.reconnectMu.Lock()
	defer c.reconnectMu.Unlock()
	c.imgMu.Lock()
	imgs := slices.Collect(maps.Keys(c.images))
	c.imgMu.Unlock()
	for _, img := range imgs {
		img.Close()
	}
	c.conn.Shutdown()
	return nil
}

func (c *Cluster) register(img *Image) {
	c.imgMu.Lock()
	c.images[img] = struct{}{}
	c.imgMu.Unlock()
}

func (c *Cluster) unregister(img *Image) {
	c.imgMu.Lock()
	delete(c.images, img)
	c.imgMu.Unlock()
}
