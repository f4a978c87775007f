package cluster

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/config"
)

// tuningCases are values around every limit of config.TuningLimits and the
// first-burst rule.
func tuningCases() []config.Tuning {
	var out []config.Tuning
	for i := range config.TuningLimits {
		l := &config.TuningLimits[i]
		for _, v := range []int{-1, 0, l.Min - 1, l.Min, l.Default, l.Max, l.Max + 1} {
			var t config.Tuning
			// Through JSON, so the case sets the field the key names.
			if err := json.Unmarshal([]byte(`{"`+l.Key+`":`+itoa(v)+`}`), &t); err != nil {
				panic(err)
			}
			out = append(out, t)
		}
	}
	return append(out,
		config.Tuning{MaxBurstLength: 8192},
		config.Tuning{MaxBurstLength: 8192, FirstBurstLength: 8192},
		config.Tuning{MaxBurstLength: 8192, FirstBurstLength: 8193},
		config.Tuning{FirstBurstLength: config.DefaultMaxBurstLength + 1},
		config.Tuning{QueueDepth: 4096, MaxRecvDataSegmentLength: 1 << 20, MaxBurstLength: 1<<24 - 1, FirstBurstLength: 1 << 20},
	)
}

func itoa(v int) string { b, _ := json.Marshal(v); return string(b) }

// fileVerdict loads t from a configuration file document.
func fileVerdict(t config.Tuning) error {
	doc, err := json.Marshal(config.Config{Portals: []string{"127.0.0.1:3260"}, Tuning: t})
	if err != nil {
		panic(err)
	}
	_, err = config.Parse(doc, true)
	return err
}

// sameVerdict fails unless both errors are nil, or both report the same
// problem (the etcd one as ErrInvalid).
func sameVerdict(t *testing.T, tu config.Tuning, fileErr, etcdErr error) {
	t.Helper()
	switch {
	case (fileErr == nil) != (etcdErr == nil):
		t.Errorf("%+v: file says %v, etcd says %v", tu, fileErr, etcdErr)
	case etcdErr != nil && !errors.Is(etcdErr, ErrInvalid):
		t.Errorf("%+v: etcd error %v is not ErrInvalid", tu, etcdErr)
	case fileErr != nil:
		// Both name the key and its range with the same words.
		msg := strings.TrimPrefix(fileErr.Error(), "tuning: ")
		if !strings.HasSuffix(etcdErr.Error(), msg) {
			t.Errorf("%+v: file says %q, etcd says %q", tu, fileErr, etcdErr)
		}
	}
}

func TestSettingsValidationMatchesFile(t *testing.T) {
	for _, tu := range tuningCases() {
		sameVerdict(t, tu, fileVerdict(tu), validateSettings(&Settings{Tuning: tu}))
	}
}

// The same through a real write: what etcd accepts, a file accepts.
func TestSettingsWriteMatchesFile(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	var valid int
	for _, tu := range tuningCases() {
		_, err := s.Apply(ctx, PutSettings(Settings{Tuning: tu}))
		sameVerdict(t, tu, fileVerdict(tu), err)
		if err == nil {
			valid++
			snap, _, lerr := s.Load(ctx)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if snap.Settings.Tuning != tu {
				t.Errorf("stored %+v, wrote %+v", snap.Settings.Tuning, tu)
			}
		}
	}
	if valid == 0 {
		t.Fatal("no case was valid")
	}
}
