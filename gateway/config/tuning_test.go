package config

import (
	"fmt"
	"strings"
	"testing"
)

// tuningWith returns a Tuning with the limit's value set to v.
func tuningWith(l *Limit, v int) Tuning {
	var t Tuning
	*l.field(&t) = v
	return t
}

func TestTuningLimits(t *testing.T) {
	want := map[string][3]int{ // min, max, default
		"queue_depth":                  {1, 4096, 128},
		"max_recv_data_segment_length": {512, 1<<24 - 1, 256 << 10},
		"max_burst_length":             {512, 1<<24 - 1, 1 << 20},
		"first_burst_length":           {512, 1<<24 - 1, 256 << 10},
		"max_outstanding_r2t":          {1, 65535, 4},
		"max_connections":              {1, 1, 1},
		"nopin_interval":               {1, 3600, 10},
		"nopin_timeout":                {1, 3600, 30},
		"dataout_timeout":              {1, 3600, 30},
		"discovery_idle_timeout":       {1, 3600, 30},
		"connection_buffer_mib":        {1, 16384, 32},
		"gateway_buffer_mib":           {16, 1 << 20, 1024},
		"connection_limit":             {1, 65535, 4096},
		"connections_per_address":      {1, 65535, 256},
		"sessions_per_initiator":       {1, 65535, 256},
	}
	if len(TuningLimits) != len(want) {
		t.Fatalf("%d limits, want %d", len(TuningLimits), len(want))
	}
	fields := map[*int]string{}
	for i := range TuningLimits {
		l := &TuningLimits[i]
		w, ok := want[l.Key]
		if !ok {
			t.Errorf("unexpected limit %q", l.Key)
			continue
		}
		if got := [3]int{l.Min, l.Max, l.Default}; got != w {
			t.Errorf("%s: min, max, default = %v, want %v", l.Key, got, w)
		}
		// Every limit has a field of its own.
		var probe Tuning
		if other, dup := fields[l.field(&probe)]; dup {
			t.Errorf("%s and %s share a field", l.Key, other)
		}
		fields[l.field(&probe)] = l.Key
		// The key is the field's name in files.
		extra := ""
		if l.Key == "first_burst_length" {
			extra = fmt.Sprintf(", max_burst_length: %d", MaxDataSegmentLength)
		}
		doc := fmt.Sprintf("portals: [\"127.0.0.1:3260\"]\ntuning: {%s: %d%s}\n", l.Key, l.Max, extra)
		cfg, err := Parse([]byte(doc), false)
		if err != nil {
			t.Errorf("%s: %v", l.Key, err)
		} else if l.Get(&cfg.Tuning) != l.Max {
			t.Errorf("%s in a file does not reach its field", l.Key)
		}
	}
}

func TestTuningValidate(t *testing.T) {
	for i := range TuningLimits {
		l := &TuningLimits[i]
		t.Run(l.Key, func(t *testing.T) {
			tests := []struct {
				v  int
				ok bool
			}{
				{0, true}, // the default
				{l.Min, true},
				{l.Max, true},
				{l.Default, true},
				{-1, false},
				{l.Min - 1, l.Min-1 == 0},
				{l.Max + 1, false},
				{1 << 30, false},
			}
			for _, tc := range tests {
				tu := tuningWith(l, tc.v)
				if l.Key == "first_burst_length" {
					tu.MaxBurstLength = MaxDataSegmentLength // not the rule under test
				}
				err := tu.Validate()
				if (err == nil) != tc.ok {
					t.Errorf("%s %d: error %v, want ok=%v", l.Key, tc.v, err, tc.ok)
					continue
				}
				if err != nil {
					rng := fmt.Sprintf("%d..%d", l.Min, l.Max)
					if msg := err.Error(); !strings.HasPrefix(msg, l.Key+" ") || !strings.Contains(msg, rng) {
						t.Errorf("%s %d: error %q does not name the key and %s", l.Key, tc.v, msg, rng)
					}
				}
			}
		})
	}
}

func TestTuningFirstBurst(t *testing.T) {
	tests := []struct {
		name      string
		tu        Tuning
		ok        bool
		wantFirst int // after WithDefaults, when ok
	}{
		{"defaults", Tuning{}, true, DefaultFirstBurstLength},
		{"equal", Tuning{FirstBurstLength: 8192, MaxBurstLength: 8192}, true, 8192},
		{"above max", Tuning{FirstBurstLength: 16384, MaxBurstLength: 8192}, false, 0},
		{"above default max", Tuning{FirstBurstLength: DefaultMaxBurstLength + 1}, false, 0},
		// An unset first burst follows a max burst below its default.
		{"unset with small max", Tuning{MaxBurstLength: 8192}, true, 8192},
		{"unset with large max", Tuning{MaxBurstLength: 4 << 20}, true, DefaultFirstBurstLength},
	}
	for _, tc := range tests {
		err := tc.tu.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "first_burst_length") || !strings.Contains(err.Error(), "max_burst_length") {
				t.Errorf("%s: error %q does not name both keys", tc.name, err)
			}
			continue
		}
		if got := tc.tu.WithDefaults().FirstBurstLength; got != tc.wantFirst {
			t.Errorf("%s: first burst %d, want %d", tc.name, got, tc.wantFirst)
		}
	}
}

func TestTuningDefaultsAndClamp(t *testing.T) {
	d := Tuning{PreferDigests: true}.WithDefaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for i := range TuningLimits {
		l := &TuningLimits[i]
		if got := l.Get(&d); got != l.Default {
			t.Errorf("%s default %d, want %d", l.Key, got, l.Default)
		}
	}
	if !d.PreferDigests {
		t.Error("WithDefaults dropped PreferDigests")
	}
	// Set values are kept, even invalid ones (Validate reports those).
	if got := (Tuning{QueueDepth: 9999}).WithDefaults().QueueDepth; got != 9999 {
		t.Errorf("WithDefaults changed a set value to %d", got)
	}

	for i := range TuningLimits {
		l := &TuningLimits[i]
		for _, tc := range []struct{ in, want int }{
			{0, l.Default}, {-5, l.Default}, {l.Min, l.Min}, {l.Max, l.Max}, {l.Max + 1, l.Max}, {1 << 30, l.Max},
		} {
			if got := l.Clamp(tc.in); got != tc.want {
				t.Errorf("%s: Clamp(%d) = %d, want %d", l.Key, tc.in, got, tc.want)
			}
		}
	}
	c := Tuning{QueueDepth: 1 << 20, MaxBurstLength: 4096, FirstBurstLength: 65536, MaxConnections: 8}.Clamped()
	if c.QueueDepth != 4096 || c.FirstBurstLength != 4096 || c.MaxConnections != 1 || c.Validate() != nil {
		t.Errorf("Clamped: %+v", c)
	}
}

func TestTuningTargetReset(t *testing.T) {
	for _, v := range []string{"", TargetResetSession, TargetResetTarget, TargetResetRefuse} {
		if err := (&Tuning{TargetReset: v}).Validate(); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	err := (&Tuning{TargetReset: "everything"}).Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "target_reset ") {
		t.Errorf("unknown value: %v", err)
	}
	if _, err := Parse([]byte("portals: [\"127.0.0.1:3260\"]\ntuning: {target_reset: refuse}\n"), false); err != nil {
		t.Errorf("target_reset in a file: %v", err)
	}
	if got := (Tuning{}).Clamped().TargetReset; got != TargetResetSession {
		t.Errorf("Clamped target_reset %q", got)
	}
	if got := (Tuning{TargetReset: "x"}).Clamped().TargetReset; got != TargetResetSession {
		t.Errorf("Clamped unknown target_reset %q", got)
	}
}
