package prstore

import (
	"encoding/json"
	"fmt"
	"slices"

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
	// Seq counts the changes that had effects on I_T nexuses; Changes
	// are the newest of them (at most keepChanges), so that a gateway
	// that saw a later revision first still applies every one in order.
	Seq     uint64   `json:"seq,omitempty"`
	Changes []change `json:"changes,omitempty"`
}

// keepChanges bounds the effects history in the record.
const keepChanges = 8

// change is one change's effects, to be applied by every gateway but the
// one that made it (By), which applied them itself.
type change struct {
	Seq     uint64     `json:"seq"`
	By      string     `json:"by"`
	Effects pr.Effects `json:"effects"`
}

// withChange returns r with eff recorded as its newest change. The slice
// of r is shared with a published snapshot, so it is copied.
func (r record) withChange(by string, eff pr.Effects) record {
	r.Seq++
	keep := r.Changes[max(0, len(r.Changes)-(keepChanges-1)):]
	r.Changes = append(slices.Clone(keep), change{Seq: r.Seq, By: by, Effects: eff})
	return r
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
