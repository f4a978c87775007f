package iscsi

import "fmt"

// ConnState is the target-side connection state of RFC 7143 section 8.1.
// XPT_WAIT exists only on the initiator side; it is named for completeness
// and no target transition enters it.
type ConnState uint8

const (
	ConnFree ConnState = iota
	ConnXptWait
	ConnXptUp
	ConnInLogin
	ConnLoggedIn
	ConnInLogout
	ConnLogoutRequested
	ConnCleanupWait
)

var connStateNames = [...]string{
	ConnFree:            "FREE",
	ConnXptWait:         "XPT_WAIT",
	ConnXptUp:           "XPT_UP",
	ConnInLogin:         "IN_LOGIN",
	ConnLoggedIn:        "LOGGED_IN",
	ConnInLogout:        "IN_LOGOUT",
	ConnLogoutRequested: "LOGOUT_REQUESTED",
	ConnCleanupWait:     "CLEANUP_WAIT",
}

func (s ConnState) String() string {
	if int(s) < len(connStateNames) {
		return connStateNames[s]
	}
	return fmt.Sprintf("ConnState(%d)", uint8(s))
}

// connEdges lists the legal target-side connection transitions.
var connEdges = map[ConnState][]ConnState{
	// The transport connection was accepted.
	ConnFree: {ConnXptUp},
	// The first Login Request arrived; or the login timer expired / the
	// transport went away before it.
	ConnXptUp: {ConnInLogin, ConnFree},
	// The final Login Response was sent with success; or login failed.
	ConnInLogin: {ConnLoggedIn, ConnFree},
	// A Logout Request arrived; an Async Message asked the initiator to log
	// out; the transport failed (cleanup); or the connection was closed by
	// session reinstatement, connection reinstatement or a session-wide
	// logout on another connection.
	ConnLoggedIn: {ConnInLogout, ConnLogoutRequested, ConnCleanupWait, ConnFree},
	// The Logout Response was sent; or the transport failed first.
	ConnInLogout: {ConnFree, ConnCleanupWait},
	// The requested Logout arrived; the logout timer expired or the transport
	// failed; or the connection was closed by reinstatement.
	ConnLogoutRequested: {ConnInLogout, ConnCleanupWait, ConnFree},
	// Cleanup finished (at ErrorRecoveryLevel 0 nothing is retained).
	ConnCleanupWait: {ConnFree},
}

// SessionState is the target-side session state of RFC 7143 section 8.2.
type SessionState uint8

const (
	SessionFree SessionState = iota
	SessionActive
	SessionLoggedIn
	SessionFailed
	SessionInContinue
)

var sessionStateNames = [...]string{
	SessionFree:       "FREE",
	SessionActive:     "ACTIVE",
	SessionLoggedIn:   "LOGGED_IN",
	SessionFailed:     "FAILED",
	SessionInContinue: "IN_CONTINUE",
}

func (s SessionState) String() string {
	if int(s) < len(sessionStateNames) {
		return sessionStateNames[s]
	}
	return fmt.Sprintf("SessionState(%d)", uint8(s))
}

// sessionEdges lists the legal target-side session transitions.
var sessionEdges = map[SessionState][]SessionState{
	// The leading connection entered IN_LOGIN.
	SessionFree: {SessionActive},
	// The leading login succeeded; or it failed.
	SessionActive: {SessionLoggedIn, SessionFree},
	// Logout closed the session or it was reinstated; or its last
	// connection failed.
	SessionLoggedIn: {SessionFree, SessionFailed},
	// Time2Retain expired or the session was reinstated; or a continuation
	// login started.
	SessionFailed: {SessionFree, SessionInContinue},
	// The continuation succeeded; or it failed.
	SessionInContinue: {SessionLoggedIn, SessionFailed},
}

// TransitionError reports an illegal state change.
type TransitionError struct {
	Machine  string
	From, To fmt.Stringer
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("iscsi: illegal %s state transition %v -> %v", e.Machine, e.From, e.To)
}

// nextConnState validates a connection transition and returns the new state.
func nextConnState(from, to ConnState) (ConnState, error) {
	for _, s := range connEdges[from] {
		if s == to {
			return to, nil
		}
	}
	return from, &TransitionError{Machine: "connection", From: from, To: to}
}

// nextSessionState validates a session transition and returns the new state.
func nextSessionState(from, to SessionState) (SessionState, error) {
	for _, s := range sessionEdges[from] {
		if s == to {
			return to, nil
		}
	}
	return from, &TransitionError{Machine: "session", From: from, To: to}
}
