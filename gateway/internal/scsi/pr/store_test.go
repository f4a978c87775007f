package pr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMemoryStoreParallelUpdates(t *testing.T) {
	s := NewMemoryStore()
	ctx := t.Context()
	const workers, perWorker = 8, 500
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if err := s.Update(ctx, func(st *State) error { st.Generation++; return nil }); err != nil {
					t.Error(err)
					return
				}
				// Readers run against writers without locks.
				if _, err := s.Get(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st, _ := s.Get(ctx)
	if st.Generation != workers*perWorker {
		t.Fatalf("generation %d, want %d (lost updates)", st.Generation, workers*perWorker)
	}
}

func TestMemoryStoreAbortedUpdate(t *testing.T) {
	s := NewMemoryStore()
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.Update(ctx, func(st *State) error {
		st.Registrations = append(st.Registrations, Registration{Key: 1, Port: port(1)})
		st.Generation = 9
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error %v", err)
	}
	st, _ := s.Get(ctx)
	if st.Generation != 0 || len(st.Registrations) != 0 {
		t.Fatalf("aborted update leaked: %+v", st)
	}
}

// The snapshot a reader holds never changes under it.
func TestMemoryStoreSnapshotsAreImmutable(t *testing.T) {
	s := NewMemoryStore()
	ctx := t.Context()
	_ = s.Update(ctx, func(st *State) error {
		st.Registrations = []Registration{{Key: 1, Port: port(1)}}
		st.Reservation = newReservation(port(1), 1, TypeWriteExclusive)
		return nil
	})
	snap, _ := s.Get(ctx)
	_ = s.Update(ctx, func(st *State) error {
		st.Registrations[0].Key = 2
		st.Reservation.Type = TypeExclusiveAccess
		return nil
	})
	if snap.Registrations[0].Key != 1 || snap.Reservation.Type != TypeWriteExclusive {
		t.Fatalf("snapshot changed: %+v", snap)
	}
}

func TestStoreHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := NewMemoryStore()
	if _, err := s.Get(ctx); err == nil {
		t.Fatal("Get on a cancelled context")
	}
	if err := s.Update(ctx, func(*State) error { return nil }); err == nil {
		t.Fatal("Update on a cancelled context")
	}
}

// Many initiators register, reserve and read at once; every registration
// lands and the generation counts each one.
func TestManagerConcurrentRegistrations(t *testing.T) {
	h := newHarness(t)
	const n = 32
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := port(i)
			if o := h.m.Out(h.ctx, p, proutCDB(saRegister, 0, 24), basicParam(0, uint64(i), 0)); !o.Good() {
				t.Errorf("REGISTER %d: %#x", i, o.Status)
			}
			h.m.Out(h.ctx, p, proutCDB(saReserve, TypeWriteExclusiveRegsOnly, 24), basicParam(uint64(i), 0, 0))
			h.m.In(h.ctx, p, prinCDB(saReadFullStatus, 0xffff))
			if _, err := h.m.Conflict(h.ctx, p, AccessWrite); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := h.state()
	if len(st.Registrations) != n || st.Generation != n {
		t.Fatalf("%d registrations, generation %d, want %d", len(st.Registrations), st.Generation, n)
	}
	if st.Reservation == nil {
		t.Fatal("no reservation")
	}
	for i := 1; i <= n; i++ {
		if h.conflict(port(i), AccessWrite) {
			t.Fatalf("registrant %d conflicts under a registrants-only reservation", i)
		}
	}
}

func TestRegistrationLimit(t *testing.T) {
	s := NewMemoryStore()
	_ = s.Update(t.Context(), func(st *State) error {
		for i := 0; i < maxRegistrations; i++ {
			st.Registrations = append(st.Registrations, Registration{Key: 1, Port: port(i + 10)})
		}
		return nil
	})
	h := newHarnessOn(t, s)
	o := h.out(port(1), saRegister, 0, basicParam(0, 1, 0))
	wantCheck(t, o, SenseIllegalRequest, ascInsufficientResources, ascqInsufficientRegs, -1, false)
}

func TestFileStoreAPTPLRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lu0.pr.json")
	s, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessOn(t, s)
	a, b := portOn(1, 1), portOn(2, 2)

	h.register(a, 0xa) // APTPL=0: nothing is persisted
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file written without APTPL: %v", err)
	}
	h.mustGood(h.out(b, saRegister, 0, basicParam(0, 0xb, flagAPTPL)), "REGISTER APTPL=1")
	h.reserve(b, 0xb, TypeWriteExclusiveRegsOnly)
	want := h.state()

	// A restart (a new store on the same file) brings everything back.
	s2, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	h2 := newHarnessOn(t, s2)
	got := h2.state()
	if got.Generation != want.Generation || !got.APTPL || len(got.Registrations) != 2 ||
		got.Reservation == nil || *got.Reservation != *want.Reservation {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	for i := range want.Registrations {
		if got.Registrations[i] != want.Registrations[i] {
			t.Fatalf("registration %d restored as %+v, want %+v", i, got.Registrations[i], want.Registrations[i])
		}
	}
	if h2.conflict(a, AccessWrite) || !h2.conflict(port(3), AccessWrite) {
		t.Fatal("restored reservation is not enforced")
	}
	o := h2.mustGood(h2.in(a, saReportCapabilities), "REPORT CAPABILITIES")
	if o.Data[3]&capPTPLA == 0 {
		t.Fatal("PTPL_A clear after restoring APTPL state")
	}

	// CLEAR keeps APTPL: the persisted state becomes empty.
	h2.mustGood(h2.out(a, saClear, 0, basicParam(0xa, 0, 0)), "CLEAR")
	s3, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := newHarnessOn(t, s3).state(); len(st.Registrations) != 0 || st.Reservation != nil || !st.APTPL {
		t.Fatalf("after CLEAR restored %+v", st)
	}

	// The last valid APTPL bit is zero: the file goes.
	h3 := newHarnessOn(t, s3)
	h3.mustGood(h3.out(a, saRegister, 0, basicParam(0, 0xaa, 0)), "REGISTER APTPL=0")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file kept after APTPL=0: %v", err)
	}
	s4, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := newHarnessOn(t, s4).state(); len(st.Registrations) != 0 || st.APTPL {
		t.Fatalf("state after APTPL=0 and restart: %+v", st)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Fatalf("stray files: %v", entries)
	}
}

// SPC-2 reservations are never persisted.
func TestFileStoreSkipsLegacyReservation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pr.json")
	s, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(t.Context(), func(st *State) error {
		st.APTPL = true
		l := port(1)
		st.Legacy = &l
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s2, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s2.Get(t.Context())
	if !st.APTPL || st.Legacy != nil {
		t.Fatalf("restored %+v", st)
	}
	raw, err := os.ReadFile(path)
	if err != nil || strings.Contains(string(raw), "legacy") {
		t.Fatalf("APTPL file %q, %v", raw, err)
	}
	// A file that carries one anyway does not bring it back.
	if err := os.WriteFile(path, []byte(`{"version":1,"state":{"aptpl":true,"legacy":{"initiator_port":"x"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s3, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s3.Get(t.Context()); st.Legacy != nil {
		t.Fatal("SPC-2 reservation restored from disk")
	}
}

func TestFileStoreCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "pr.json")
	s, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessOn(t, s)
	h.mustGood(h.out(port(1), saRegister, 0, basicParam(0, 1, flagAPTPL)), "REGISTER APTPL=1")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestFileStoreRejectsBadFiles(t *testing.T) {
	tests := map[string]string{
		"not json":        "{",
		"no version":      `{"state":{}}`,
		"future version":  `{"version":2,"state":{}}`,
		"no state":        `{"version":1}`,
		"zero key":        `{"version":1,"state":{"registrations":[{"key":0,"port":{"initiator_port":"i"}}]}}`,
		"orphan holder":   `{"version":1,"state":{"registrations":[{"key":1,"port":{"initiator_port":"i"}}],"reservation":{"holder":{"initiator_port":"j"},"key":1,"type":1}}}`,
		"bad type":        `{"version":1,"state":{"registrations":[{"key":1,"port":{"initiator_port":"i"}}],"reservation":{"holder":{"initiator_port":"i"},"key":1,"type":2}}}`,
		"duplicate nexus": `{"version":1,"state":{"registrations":[{"key":1,"port":{"initiator_port":"i"}},{"key":2,"port":{"initiator_port":"i"}}]}}`,
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pr.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := NewFileStore(path); err == nil {
				t.Fatal("bad APTPL file accepted")
			}
		})
	}
	if _, err := NewFileStore(t.TempDir()); err == nil {
		t.Fatal("a directory accepted as the APTPL file")
	}
}

// When the state cannot be made durable the command fails (ABORTED
// COMMAND, so the initiator retries) and nothing changes.
func TestFileStoreWriteFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := NewFileStore(filepath.Join(dir, "pr.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	h := newHarnessOn(t, s)
	o := h.out(port(1), saRegister, 0, basicParam(0, 1, flagAPTPL))
	wantCheck(t, o, SenseAbortedCommand, ascLUCommunication, 0, -1, false)
	if st := h.state(); len(st.Registrations) != 0 || st.APTPL || st.Generation != 0 {
		t.Fatalf("failed write committed state: %+v", st)
	}
	// Without APTPL nothing needs the disk.
	h.register(port(1), 1)
}

// failingStore fails every call, as an unreachable cluster store would.
type failingStore struct{}

var errUnreachable = errors.New("store unreachable")

func (failingStore) Get(context.Context) (*State, error) { return nil, errUnreachable }
func (failingStore) Update(context.Context, func(*State) error) error {
	return errUnreachable
}

func TestStoreFailureOutcomes(t *testing.T) {
	m := NewManager(failingStore{}, WithLogger(quietLogger()))
	ctx := t.Context()
	outcomes := map[string]Outcome{
		"PR IN":   m.In(ctx, port(1), prinCDB(saReadKeys, 100)),
		"PR OUT":  m.Out(ctx, port(1), proutCDB(saRegister, 0, 24), basicParam(0, 1, 0)),
		"RESERVE": m.Reserve(ctx, port(1)),
		"RELEASE": m.Release(ctx, port(1)),
	}
	for name, o := range outcomes {
		t.Run(name, func(t *testing.T) {
			wantCheck(t, o, SenseAbortedCommand, ascLUCommunication, 0, -1, false)
		})
	}
	if _, err := m.Conflict(ctx, port(1), AccessWrite); !errors.Is(err, errUnreachable) {
		t.Fatalf("Conflict error %v", err)
	}
	if c, err := m.Conflict(ctx, port(1), AccessAllowed); c || err != nil {
		t.Fatal("AccessAllowed must not need the store")
	}
	// Must not panic or block.
	m.NexusLoss(ctx, port(1))
	m.Reset(ctx)
}

func TestStateCloneIsDeep(t *testing.T) {
	l := port(9)
	st := &State{
		Registrations: []Registration{{Key: 1, Port: port(1)}},
		Reservation:   newReservation(port(1), 1, TypeExclusiveAccess),
		Legacy:        &l,
	}
	c := st.Clone()
	c.Registrations[0].Key = 2
	c.Reservation.Type = TypeWriteExclusive
	c.Legacy.InitiatorPort = "x"
	if st.Registrations[0].Key != 1 || st.Reservation.Type != TypeExclusiveAccess || st.Legacy.InitiatorPort == "x" {
		t.Fatalf("clone shares memory: %+v", st)
	}
	if (*State)(nil).Clone() == nil {
		t.Fatal("nil clone")
	}
}
