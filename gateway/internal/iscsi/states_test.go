package iscsi

import (
	"errors"
	"testing"
)

func TestConnStateTransitions(t *testing.T) {
	legal := map[[2]ConnState]bool{
		{ConnFree, ConnXptUp}:                  true,
		{ConnXptUp, ConnInLogin}:               true,
		{ConnXptUp, ConnFree}:                  true,
		{ConnInLogin, ConnLoggedIn}:            true,
		{ConnInLogin, ConnFree}:                true,
		{ConnLoggedIn, ConnInLogout}:           true,
		{ConnLoggedIn, ConnLogoutRequested}:    true,
		{ConnLoggedIn, ConnCleanupWait}:        true,
		{ConnLoggedIn, ConnFree}:               true,
		{ConnInLogout, ConnFree}:               true,
		{ConnInLogout, ConnCleanupWait}:        true,
		{ConnLogoutRequested, ConnInLogout}:    true,
		{ConnLogoutRequested, ConnCleanupWait}: true,
		{ConnLogoutRequested, ConnFree}:        true,
		{ConnCleanupWait, ConnFree}:            true,
	}
	for from := ConnFree; from <= ConnCleanupWait; from++ {
		for to := ConnFree; to <= ConnCleanupWait; to++ {
			got, err := nextConnState(from, to)
			if legal[[2]ConnState{from, to}] {
				if err != nil || got != to {
					t.Errorf("%v -> %v: got %v, %v; want legal", from, to, got, err)
				}
				continue
			}
			var te *TransitionError
			if !errors.As(err, &te) || got != from {
				t.Errorf("%v -> %v: got %v, %v; want rejected and state kept", from, to, got, err)
			}
		}
	}
}

func TestConnStateXptWaitUnreachable(t *testing.T) {
	// XPT_WAIT is the initiator's state: no target transition enters or
	// leaves it.
	for s := ConnFree; s <= ConnCleanupWait; s++ {
		if _, err := nextConnState(s, ConnXptWait); err == nil {
			t.Errorf("%v -> XPT_WAIT accepted", s)
		}
		if _, err := nextConnState(ConnXptWait, s); err == nil {
			t.Errorf("XPT_WAIT -> %v accepted", s)
		}
	}
}

func TestSessionStateTransitions(t *testing.T) {
	legal := map[[2]SessionState]bool{
		{SessionFree, SessionActive}:         true,
		{SessionActive, SessionLoggedIn}:     true,
		{SessionActive, SessionFree}:         true,
		{SessionLoggedIn, SessionFree}:       true,
		{SessionLoggedIn, SessionFailed}:     true,
		{SessionFailed, SessionFree}:         true,
		{SessionFailed, SessionInContinue}:   true,
		{SessionInContinue, SessionLoggedIn}: true,
		{SessionInContinue, SessionFailed}:   true,
	}
	for from := SessionFree; from <= SessionInContinue; from++ {
		for to := SessionFree; to <= SessionInContinue; to++ {
			got, err := nextSessionState(from, to)
			if legal[[2]SessionState{from, to}] {
				if err != nil || got != to {
					t.Errorf("%v -> %v: got %v, %v; want legal", from, to, got, err)
				}
				continue
			}
			if err == nil || got != from {
				t.Errorf("%v -> %v: got %v, %v; want rejected", from, to, got, err)
			}
		}
	}
}

func TestStateNames(t *testing.T) {
	for _, tc := range []struct {
		s    interface{ String() string }
		want string
	}{
		{ConnFree, "FREE"}, {ConnXptWait, "XPT_WAIT"}, {ConnXptUp, "XPT_UP"},
		{ConnInLogin, "IN_LOGIN"}, {ConnLoggedIn, "LOGGED_IN"}, {ConnInLogout, "IN_LOGOUT"},
		{ConnLogoutRequested, "LOGOUT_REQUESTED"}, {ConnCleanupWait, "CLEANUP_WAIT"},
		{ConnState(99), "ConnState(99)"},
		{SessionFree, "FREE"}, {SessionActive, "ACTIVE"}, {SessionLoggedIn, "LOGGED_IN"},
		{SessionFailed, "FAILED"}, {SessionInContinue, "IN_CONTINUE"}, {SessionState(7), "SessionState(7)"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
