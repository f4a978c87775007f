package prstore

import (
	"encoding/json"
	"fmt"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

// recordVersion is the version of the stored value.
const recordVersion = 1

// record is the value of pr/<disk>.
type record struct {
	Version int       `json:"version"`
	State   *pr.State `json:"state"`
	// Resets counts the logical unit resets of the disk; ResetBy is the
	// gateway that made the last one (it has already applied it).
	Resets  uint64 `json:"resets,omitempty"`
	ResetBy string `json:"reset_by,omitempty"`
}

func encode(r record) ([]byte, error) {
	r.Version = recordVersion
	if r.State == nil {
		r.State = &pr.State{}
	}
	return json.Marshal(r)
}

// decode reads a stored value; nil or empty is the initial state.
func decode(b []byte) (record, error) {
	if len(b) == 0 {
		return record{State: &pr.State{}}, nil
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("prstore: decode: %w", err)
	}
	if r.Version > recordVersion {
		return record{}, fmt.Errorf("prstore: record version %d is newer than this build (%d)", r.Version, recordVersion)
	}
	if r.State == nil {
		r.State = &pr.State{}
	}
	return r, nil
}
