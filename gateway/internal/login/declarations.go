package login

import "strconv"

// resolve reads the names of the first request, checks them against the
// session a non-leading connection joins, and asks the policy.
func (c *Conversation) resolve(kvs []KV) *loginError {
	decl := make(map[string]string, 4)
	for _, kv := range kvs {
		switch kv.Key {
		case keyInitiatorName, keyTargetName, keySessionType, keyInitiatorAlias:
			decl[kv.Key] = kv.Value
		}
	}
	initiator := decl[keyInitiatorName]
	if initiator == "" {
		return refuse(StatusMissingParameter, "InitiatorName missing from the first login request")
	}
	if len(initiator) > maxNameLength {
		return refuse(StatusInitiatorError, "InitiatorName longer than %d bytes", maxNameLength)
	}
	if len(decl[keyInitiatorAlias]) > maxSimpleValue {
		return refuse(StatusInitiatorError, "InitiatorAlias longer than %d bytes", maxSimpleValue)
	}
	sessionType := SessionNormal
	if v, ok := decl[keySessionType]; ok {
		sessionType = v
	}
	if sessionType != SessionNormal && sessionType != SessionDiscovery {
		return refuse(StatusSessionTypeUnsupported, "unknown SessionType")
	}
	target := ""
	if sessionType == SessionNormal {
		target = decl[keyTargetName]
		if target == "" {
			return refuse(StatusMissingParameter, "TargetName missing from a Normal session login")
		}
		if len(target) > maxNameLength {
			return refuse(StatusInitiatorError, "TargetName longer than %d bytes", maxNameLength)
		}
	}
	if !c.policy.Leading {
		s := c.policy.Session
		if s == nil {
			return refuse(StatusSessionDoesNotExist, "non-leading connection without a session")
		}
		if s.SessionType != sessionType || s.InitiatorName != initiator || s.TargetName != target {
			return refuse(StatusInitiatorError, "connection names differ from its session's")
		}
	}
	if c.policy.Resolve == nil {
		return refuse(StatusTargetError, "no login policy")
	}
	d := c.policy.Resolve(sessionType, initiator, target)
	if d.Status != StatusSuccess {
		return refuse(d.Status, "refused by the target's policy")
	}
	if d.CHAP != nil && (d.CHAP.User == "" || d.CHAP.Secret == "") {
		return refuse(StatusTargetError, "CHAP required but the credentials are incomplete")
	}
	c.decision = d
	c.resolved = true
	c.params.SessionType = sessionType
	c.params.InitiatorName = initiator
	c.params.TargetName = target
	c.params.InitiatorAlias = decl[keyInitiatorAlias]
	if c.stage == StageOperational {
		// The initiator skipped the security stage.
		if d.CHAP != nil {
			return refuse(StatusAuthFailed, "authentication required but the login started in the operational stage")
		}
		c.authMethod = authNone
		c.authenticated = true
	}
	return nil
}

// checkDeclaration accepts a name declared again in a later request only
// with the same value: some initiators repeat their names in the first
// operational request after AuthMethod=None.
func (c *Conversation) checkDeclaration(key, value string) *loginError {
	var same bool
	switch key {
	case keyInitiatorName:
		same = value == c.params.InitiatorName
	case keySessionType:
		same = value == c.params.SessionType
	case keyTargetName:
		// Discovery sessions have no target; the name is ignored there.
		same = c.params.SessionType == SessionDiscovery || value == c.params.TargetName
	case keyInitiatorAlias:
		if c.params.InitiatorAlias == "" && len(value) <= maxSimpleValue {
			c.params.InitiatorAlias = value
		}
		same = value == c.params.InitiatorAlias
	}
	if !same {
		return refuse(StatusInitiatorError, "%s changed during login", key)
	}
	return nil
}

// greeting is what the first response declares: TargetPortalGroupTag (and
// TargetAlias) in a Normal session (RFC 7143 §13.9).
func (c *Conversation) greeting() []KV {
	if c.params.SessionType != SessionNormal {
		return nil
	}
	out := []KV{{keyTargetPortalGroupTag, strconv.Itoa(int(c.policy.TargetPortalGroupTag))}}
	if a := c.decision.TargetAlias; a != "" && len(a) <= maxSimpleValue {
		out = append(out, KV{keyTargetAlias, a})
	}
	return out
}

// declareMaxRecv declares the target's MaxRecvDataSegmentLength, once.
func (c *Conversation) declareMaxRecv() KV {
	c.declaredMaxRecv = true
	c.params.TargetMaxRecvDataSegmentLength = c.offer.TargetMaxRecvDataSegmentLength
	return KV{keyMaxRecvDSL, strconv.Itoa(c.params.TargetMaxRecvDataSegmentLength)}
}
