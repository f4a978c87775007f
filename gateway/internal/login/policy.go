package login

// Credentials are CHAP credentials: User/Secret authenticate the initiator;
// MutualUser/MutualSecret, when both are set, authenticate the target to the
// initiator.
type Credentials struct {
	User, Secret, MutualUser, MutualSecret string
}

// Decision is what the target decides about an initiator/target pair.
type Decision struct {
	// Status is StatusSuccess to proceed, or the refusal to send
	// (StatusNotFound, StatusForbidden, ...).
	Status Status
	// CHAP nil accepts AuthMethod=None; non-nil requires CHAP.
	CHAP        *Credentials
	TargetAlias string
}

// Policy is supplied by the engine per connection.
type Policy struct {
	// Resolve is called once InitiatorName, SessionType and (for Normal
	// sessions) TargetName are known; targetName is "" for discovery
	// sessions.
	Resolve func(sessionType, initiatorName, targetName string) Decision
	// TargetPortalGroupTag is sent in the first response of a Normal
	// session login.
	TargetPortalGroupTag uint16
	// Offer holds the target's own limits and preferences; start from
	// DefaultParams. TargetMaxRecvDataSegmentLength is the value the target
	// declares; HeaderDigest/DataDigest true make CRC32C preferred.
	// Out-of-range numbers fall back to the RFC default, and
	// ErrorRecoveryLevel is always 0.
	Offer Params
	// Leading is true on the leading connection of a session (TSIH == 0).
	Leading bool
	// Session holds the session's negotiated values for a non-leading
	// connection.
	Session *Params
}

// Request is one Login Request PDU's relevant fields.
type Request struct {
	Transit, Continue bool
	CSG, NSG          uint8
	Text              []byte
}

// Response is what to put in the Login Response.
type Response struct {
	Transit, Continue bool
	CSG, NSG          uint8
	Text              []byte
	// Status other than StatusSuccess: send it, then close the connection.
	Status Status
	// Done: transit to the full feature phase accepted; Params are final.
	Done bool
}
