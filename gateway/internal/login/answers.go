package login

import "strconv"

// answer handles one key of a request. It returns the pair to send back, or
// nil for declarations and CHAP keys (collected for the exchange).
func (c *Conversation) answer(kv KV, chapKeys chapInput, agreedCHAP *bool) (*KV, *loginError) {
	k, v := kv.Key, kv.Value
	switch k {
	case keyInitiatorName, keyTargetName, keySessionType, keyInitiatorAlias:
		return nil, c.checkDeclaration(k, v)
	}
	if offered, ok := c.targetOffers[k]; ok {
		delete(c.targetOffers, k)
		c.seen[k] = struct{}{}
		return nil, c.acceptAnswer(k, v, offered)
	}
	if _, dup := c.seen[k]; dup {
		return nil, refuse(StatusInitiatorError, "key %q negotiated twice", k)
	}
	c.seen[k] = struct{}{}
	if isSecurityKey(k) {
		if c.stage != StageSecurity {
			return nil, refuse(StatusInitiatorError, "security key %q outside the security stage", k)
		}
		if k == keyAuthMethod {
			return c.answerAuthMethod(v, agreedCHAP)
		}
		chapKeys[k] = v
		return nil, nil
	}
	if isTargetOnlyKey(k) {
		return nil, refuse(StatusInitiatorError, "key %q is sent by targets only", k)
	}
	return &KV{k, c.answerOperational(k, v)}, nil
}

// answerAuthMethod selects CHAP when the policy requires it, None otherwise.
func (c *Conversation) answerAuthMethod(v string, agreedCHAP *bool) (*KV, *loginError) {
	chapRequired := c.decision.CHAP != nil
	choice, ok := selectAuthMethod(splitList(v), chapRequired)
	if !ok {
		if chapRequired {
			return nil, refuse(StatusAuthFailed, "CHAP required but not offered")
		}
		return nil, refuse(StatusAuthFailed, "no offered AuthMethod is configured")
	}
	c.authMethod = choice
	if choice == authCHAP {
		c.chap = chapExchange{state: chapWaitAlgorithm, creds: *c.decision.CHAP}
		*agreedCHAP = true
	} else {
		c.authenticated = true
	}
	return &KV{keyAuthMethod, choice}, nil
}

// answerOperational answers an operational or unknown key (RFC 7143 §6.2,
// §13): the negotiated value, Reject for a value out of range or syntax,
// Irrelevant where the key does not apply, NotUnderstood for unknown keys.
func (c *Conversation) answerOperational(k, v string) string {
	if sk, ok := sessionKeyIndex[k]; ok {
		return c.answerSessionKey(sk, v)
	}
	switch k {
	case keyHeaderDigest, keyDataDigest:
		return c.answerDigest(k, v)
	case keyMaxRecvDSL:
		n, err := parseRange(v, minSegmentLength, maxSegmentLength)
		if err != nil {
			// The key is answered with Reject, so the target cannot
			// declare its own value in it: both sides keep the default.
			c.declaredMaxRecv = true
			return valueReject
		}
		c.params.MaxRecvDataSegmentLength = int(n)
		return c.declareMaxRecv().Value
	case keyOFMarker, keyIFMarker:
		// Markers are obsolete (RFC 7143 §13.25): answer No, never NotUnderstood.
		if _, err := parseBool(v); err != nil {
			return valueReject
		}
		return valueNo
	case keyOFMarkInt, keyIFMarkInt:
		return valueReject
	case keyTaskReporting:
		if !c.leading() || c.discovery() {
			return valueIrrelevant
		}
		if choice, ok := selectTaskReporting(splitList(v)); ok && len(v) <= maxSimpleValue {
			return choice
		}
		return valueReject
	case keySendTargets:
		// Text requests only, in the full feature phase.
		return valueIrrelevant
	}
	return valueNotUnderstood
}

func (c *Conversation) answerSessionKey(sk *sessionKey, v string) string {
	if !c.leading() {
		// Session-wide keys are settled by the leading connection.
		return valueIrrelevant
	}
	if c.discovery() && sk.irrelevantInDiscovery {
		return valueIrrelevant
	}
	if sk.isBool() {
		b, err := parseBool(v)
		if err != nil {
			return valueReject
		}
		r := resolveBool(sk.fn, b, *sk.flag(&c.offer))
		*sk.flag(&c.params) = r
		return formatBool(r)
	}
	n, err := parseRange(v, sk.lo, sk.hi)
	if err != nil {
		return valueReject
	}
	r := resolveNumber(sk.fn, n, c.ours(sk))
	*sk.number(&c.params) = int(r)
	return strconv.FormatUint(r, 10)
}

// ours is the target's value for a numerical session key. FirstBurstLength
// may not exceed MaxBurstLength (RFC 7143 §13.14).
func (c *Conversation) ours(sk *sessionKey) uint64 {
	v := *sk.number(&c.offer)
	if sk.name == keyFirstBurstLength {
		v = min(v, c.params.MaxBurstLength)
	}
	return uint64(v)
}

func (c *Conversation) answerDigest(k, v string) string {
	if len(v) > maxSimpleValue {
		return valueReject
	}
	prefer := c.offer.HeaderDigest
	field := &c.params.HeaderDigest
	if k == keyDataDigest {
		prefer = c.offer.DataDigest
		field = &c.params.DataDigest
	}
	choice, ok := selectDigest(splitList(v), prefer)
	if !ok {
		return valueReject
	}
	*field = choice == digestCRC32C
	return choice
}

// makeOffers proposes the session keys the initiator did not offer whose
// default the target cannot accept (e.g. a smaller FirstBurstLength, or
// ImmediateData=No). They go in the response to the first transit request
// of the operational stage, which then holds the stage (T=0) until the
// initiator answers (RFC 7143 §6.2).
func (c *Conversation) makeOffers() []KV {
	if !c.leading() {
		return nil
	}
	var out []KV
	for i := range sessionKeys {
		sk := &sessionKeys[i]
		if _, done := c.seen[sk.name]; done || (c.discovery() && sk.irrelevantInDiscovery) {
			continue
		}
		var value string
		if sk.isBool() {
			cur, ours := *sk.flag(&c.params), *sk.flag(&c.offer)
			if resolveBool(sk.fn, cur, ours) == cur {
				continue
			}
			value = formatBool(ours)
		} else {
			cur, ours := uint64(*sk.number(&c.params)), c.ours(sk)
			if resolveNumber(sk.fn, cur, ours) == cur {
				continue
			}
			value = strconv.FormatUint(ours, 10)
		}
		c.targetOffers[sk.name] = value
		out = append(out, KV{sk.name, value})
	}
	return out
}

// acceptAnswer takes the initiator's answer to a key the target offered. The
// answer must be what the key's result function allows given the offer.
func (c *Conversation) acceptAnswer(k, v, offered string) *loginError {
	if isReservedAnswer(v) {
		// Not negotiated: the default stays.
		return nil
	}
	sk := sessionKeyIndex[k]
	if sk.isBool() {
		got, err := parseBool(v)
		ours, _ := parseBool(offered)
		if err != nil || resolveBool(sk.fn, got, ours) != got {
			return refuse(StatusInitiatorError, "answer to %s violates %s", k, sk.fn)
		}
		*sk.flag(&c.params) = got
		return nil
	}
	got, err := parseRange(v, sk.lo, sk.hi)
	ours, _ := parseNumber(offered)
	if err != nil || resolveNumber(sk.fn, got, ours) != got {
		return refuse(StatusInitiatorError, "answer to %s violates %s", k, sk.fn)
	}
	*sk.number(&c.params) = int(got)
	return nil
}

func (c *Conversation) leading() bool   { return c.policy.Leading || c.policy.Session == nil }
func (c *Conversation) discovery() bool { return c.params.SessionType == SessionDiscovery }

// negotiationOrder moves MaxBurstLength ahead of FirstBurstLength so that
// the FirstBurstLength answer respects the negotiated MaxBurstLength.
func negotiationOrder(kvs []KV) []KV {
	first, maxb := -1, -1
	for i, kv := range kvs {
		switch kv.Key {
		case keyFirstBurstLength:
			first = i
		case keyMaxBurstLength:
			maxb = i
		}
	}
	if first < 0 || maxb < first {
		return kvs
	}
	out := make([]KV, 0, len(kvs))
	out = append(out, kvs[:first]...)
	out = append(out, kvs[maxb])
	for i := first; i < len(kvs); i++ {
		if i != maxb {
			out = append(out, kvs[i])
		}
	}
	return out
}
