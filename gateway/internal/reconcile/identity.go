package reconcile

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// Default device identities (docs/adr/0005-default-wwns.md).
//
// A disk whose definition gives no WWN gets one drawn at random the first
// time the gateway opens it, recorded in the state directory (wwns.json)
// before the logical unit exists, and read back on every later start: a
// WWN survives restarts and renames nothing, and nobody can compute one
// from a disk's name. The unit serial number defaults to the WWN, so it
// follows.
//
// A state directory that existed before this file did belongs to a
// gateway that derived WWNs from names; the disks it finds at the first
// start are recorded with those WWNs, so an upgrade changes no device
// identity (a changed WWN is a new disk to multipath, VMFS and udev).
//
// Without a state directory nothing can be recorded: WWNs are derived from
// the names as before, and each such disk is logged as a warning.

// wwnFile is the record of default WWNs in the state directory.
const wwnFile = "wwns.json"

// wwnRegistry holds the recorded default WWNs; it belongs to the
// Reconciler (under its mutex).
type wwnRegistry struct {
	loaded bool
	// legacy: the state directory predates the record; disks not yet
	// recorded keep their name-derived WWN.
	legacy bool
	byDisk map[string]string
}

// defaultWWN returns the WWN of a disk whose definition gives none.
func (r *Reconciler) defaultWWN(spec config.Disk) (string, error) {
	if spec.WWN != "" {
		return spec.WWN, nil
	}
	if r.opts.StateDir == "" {
		r.log.Warn("disk has no wwn and the gateway no state directory: its WWN is derived from its name, which anyone can compute; set wwn or run with -state-dir",
			"disk", spec.Name)
		return NameDerivedWWN(spec.Name), nil
	}
	reg := &r.wwns
	if !reg.loaded {
		if err := reg.load(r.opts.StateDir); err != nil {
			return "", err
		}
	}
	if w := reg.byDisk[spec.Name]; w != "" {
		return w, nil
	}
	w := NameDerivedWWN(spec.Name)
	if !reg.legacy {
		var err error
		if w, err = reg.draw(); err != nil {
			return "", err
		}
	}
	reg.byDisk[spec.Name] = w
	if err := reg.save(r.opts.StateDir); err != nil {
		delete(reg.byDisk, spec.Name)
		return "", err
	}
	r.log.Info("disk WWN recorded", "disk", spec.Name, "wwn", w, "name_derived", reg.legacy,
		"file", filepath.Join(r.opts.StateDir, wwnFile))
	return w, nil
}

// NameDerivedWWN is the WWN earlier versions gave a disk without one, and
// the one a gateway without a state directory still gives: FNV-1a of the
// name (what scsi.NewLU derives for an empty WWN).
func NameDerivedWWN(name string) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	return fmt.Sprintf("%016x", h.Sum64())
}

func (g *wwnRegistry) load(dir string) error {
	path := filepath.Join(dir, wwnFile)
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		g.byDisk = map[string]string{}
		// Anything already in the directory (persistent reservations)
		// comes from a gateway that derived WWNs from names.
		entries, derr := os.ReadDir(dir)
		if derr != nil && !errors.Is(derr, fs.ErrNotExist) {
			return fmt.Errorf("state directory: %w", derr)
		}
		g.legacy = len(entries) > 0
	case err != nil:
		return fmt.Errorf("WWN record: %w", err)
	default:
		var rec struct {
			Disks map[string]string `json:"disks"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("WWN record %s: %w", path, err)
		}
		for name, w := range rec.Disks {
			if len(w) != 16 || !config.IsLowerHex(w) {
				return fmt.Errorf("WWN record %s: disk %q: wwn %q is not 16 lower-case hex digits", path, name, w)
			}
		}
		g.byDisk = rec.Disks
		if g.byDisk == nil {
			g.byDisk = map[string]string{}
		}
	}
	g.loaded = true
	return nil
}

// draw returns a random WWN no recorded disk has.
func (g *wwnRegistry) draw() (string, error) {
	used := make(map[string]bool, len(g.byDisk))
	for _, w := range g.byDisk {
		used[w] = true
	}
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		if w := hex.EncodeToString(b[:]); !used[w] {
			return w, nil
		}
	}
}

// save writes the record atomically (temporary file, fsync, rename), so a
// crash leaves the old record or the new one.
func (g *wwnRegistry) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(struct {
		Comment string            `json:"comment"`
		Disks   map[string]string `json:"disks"`
	}{
		Comment: "WWNs of disks whose configuration gives none; a disk keeps its WWN as long as this file does",
		Disks:   g.byDisk,
	}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, wwnFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, wwnFile)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// prepareWWNs reads the record before an Apply touches the state directory
// (opening a disk creates pr/ there, which would look like an older
// gateway's directory). An error is reported by defaultWWN, per disk.
func (r *Reconciler) prepareWWNs() {
	if r.opts.StateDir != "" && !r.wwns.loaded {
		if err := r.wwns.load(r.opts.StateDir); err != nil {
			r.log.Error("WWN record unreadable: disks without a wwn are not opened", "err", err)
		}
	}
}

// wwnsApplied ends the upgrade case: only the disks of the first
// configuration applied keep name-derived WWNs.
func (r *Reconciler) wwnsApplied() {
	if r.wwns.loaded {
		r.wwns.legacy = false
	}
}
