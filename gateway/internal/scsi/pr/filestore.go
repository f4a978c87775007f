package pr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// aptplFileVersion is the version of the persisted format.
const aptplFileVersion = 1

type aptplFile struct {
	Version int    `json:"version"`
	State   *State `json:"state"`
}

// fileStore is a memory store whose APTPL state is also written to a file,
// so that registrations and the reservation survive a restart when an
// initiator asked for it (APTPL=1). Without APTPL nothing is persisted and
// the file is removed, as SPC-4 requires.
type fileStore struct {
	*memoryStore
	path string
	// written is what the file holds now; nil when there is no file.
	written []byte
}

// NewFileStore returns a Store that persists the APTPL state of one
// logical unit in the JSON file at path (written atomically: temporary
// file, fsync, rename, fsync of the directory).
func NewFileStore(path string) (Store, error) {
	fs := &fileStore{path: path}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("APTPL state directory: %w", err)
	}
	initial, raw, err := loadAPTPL(path)
	if err != nil {
		return nil, err
	}
	fs.written = raw
	fs.memoryStore = newMemoryStore(initial, fs.persist)
	return fs, nil
}

func loadAPTPL(path string) (*State, []byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read APTPL state: %w", err)
	}
	var f aptplFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, nil, fmt.Errorf("decode APTPL state %s: %w", path, err)
	}
	if f.Version != aptplFileVersion {
		return nil, nil, fmt.Errorf("APTPL state %s: unsupported version %d", path, f.Version)
	}
	if f.State == nil {
		return nil, nil, fmt.Errorf("APTPL state %s: no state", path)
	}
	f.State.Legacy = nil
	if err := f.State.validate(); err != nil {
		return nil, nil, fmt.Errorf("APTPL state %s: %w", path, err)
	}
	return f.State, raw, nil
}

// persist makes st's persistent part durable before the store publishes it.
func (fs *fileStore) persist(st *State) error {
	if !st.APTPL {
		if fs.written == nil {
			return nil
		}
		if err := os.Remove(fs.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove APTPL state: %w", err)
		}
		if err := syncDir(filepath.Dir(fs.path)); err != nil {
			return err
		}
		fs.written = nil
		return nil
	}
	durable := *st
	durable.Legacy = nil
	raw, err := json.MarshalIndent(aptplFile{Version: aptplFileVersion, State: &durable}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode APTPL state: %w", err)
	}
	if bytes.Equal(raw, fs.written) {
		return nil
	}
	if err := writeFileAtomic(fs.path, raw); err != nil {
		return err
	}
	fs.written = raw
	return nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write APTPL state: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write APTPL state: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync APTPL state: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close APTPL state: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename APTPL state: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or remove in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	return nil
}
