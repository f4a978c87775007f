package node

import "testing"

func TestAdmission(t *testing.T) {
	type want struct{ admits, reload, reconnect bool }
	type step struct {
		ev     admissionEvent
		reload bool // a reload that started before this step completes instead
		want   want
	}
	serving := want{admits: true}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"lease gone, registered, reloaded", []step{
			{ev: evLeaseGone, want: want{}},
			{ev: evRegistered, want: want{reload: true}},
			{reload: true, want: serving},
		}},
		{"fenced: reload before reconnect", []step{
			{ev: evFenced, want: want{reload: true}},
			{reload: true, want: want{reconnect: true}},
			{ev: evReplaced, want: serving},
		}},
		{"fenced while cut off: neither reload nor reconnect before registering", []step{
			{ev: evFenced, want: want{reload: true}},
			{ev: evLeaseGone, want: want{}},
			{reload: true, want: want{}},
			{ev: evRegistered, want: want{reload: true}},
			{reload: true, want: want{reconnect: true}},
			{ev: evReplaced, want: serving},
		}},
		{"lease gone, fenced after registering", []step{
			{ev: evLeaseGone, want: want{}},
			{ev: evRegistered, want: want{reload: true}},
			{ev: evFenced, want: want{reload: true}},
			{reload: true, want: want{reconnect: true}},
			{ev: evReplaced, want: serving},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a admission
			if !a.admits() || a.needsReload() || a.mayReconnect() {
				t.Fatalf("initial admission %+v does not serve", a)
			}
			for i, s := range tc.steps {
				if s.reload {
					a = a.reloaded(a.gen)
				} else {
					a = a.next(s.ev)
				}
				got := want{a.admits(), a.needsReload(), a.mayReconnect()}
				if got != s.want {
					t.Fatalf("step %d: %+v, want %+v (%+v)", i, got, s.want, a)
				}
			}
		})
	}
}

// A reload that started before the client was fenced does not count as
// a reload after it.
func TestAdmissionReloadFromBeforeAFence(t *testing.T) {
	a := admission{}.next(evFenced)
	started := a.gen
	a = a.next(evReplaced).next(evFenced) // fenced again meanwhile
	if a = a.reloaded(started); !a.needsReload() || a.admits() {
		t.Fatalf("stale reload counted: %+v", a)
	}
	if a = a.reloaded(a.gen); !a.mayReconnect() {
		t.Fatalf("after a current reload: %+v", a)
	}
}
