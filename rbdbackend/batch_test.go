package rbdbackend

import (
	"slices"
	"testing"
)

type ender struct {
	name string
	log  *[]string
}

func (e *ender) EndBatch() { *e.log = append(*e.log, e.name) }

// After runs its work at once without a batch; in a batch, once per
// registrant, in the order registered, at End, which leaves the batch
// empty for the next one.
func TestBatch(t *testing.T) {
	var log []string
	a, b := &ender{"a", &log}, &ender{"b", &log}
	var none *Batch
	none.After(a)
	if !slices.Equal(log, []string{"a"}) {
		t.Fatalf("without a batch: %q", log)
	}
	log = nil
	var batch Batch
	batch.After(b)
	batch.After(a)
	batch.After(b)
	if len(log) != 0 {
		t.Fatalf("ran before End: %q", log)
	}
	batch.End()
	if !slices.Equal(log, []string{"b", "a"}) {
		t.Fatalf("End ran %q, want b then a once each", log)
	}
	log = nil
	batch.End()
	batch.After(a)
	batch.End()
	if !slices.Equal(log, []string{"a"}) {
		t.Fatalf("the next batch ran %q", log)
	}
}
