package login

import (
	"crypto/rand"
	"io"
)

const (
	// maxLoginSegment is the initiator's MaxRecvDataSegmentLength while
	// logging in: declared values take effect only after login, so the
	// default applies (RFC 7143 §13.12).
	maxLoginSegment = 8192
	// maxCollectedText bounds a request sent in pieces with the C bit.
	maxCollectedText = 64 << 10
	// maxSteps bounds the login PDUs of one connection; real logins need
	// fewer than ten.
	maxSteps = 128
)

// Conversation is the login of one connection, from the first Login Request
// to the transit to the full feature phase. It is not safe for concurrent use.
type Conversation struct {
	policy   Policy
	offer    Params // normalized Policy.Offer
	params   Params
	decision Decision
	random   io.Reader

	started, resolved, done bool
	stage                   uint8
	err                     *loginError
	steps, pairs            int

	inText []byte       // pieces of a request sent with the C bit
	out    pendingReply // rest of a response longer than one PDU

	seen         map[string]struct{} // keys the initiator has offered so far
	targetOffers map[string]string   // keys the target offered, awaiting answers
	offersMade   bool

	authMethod    string
	authenticated bool
	chap          chapExchange

	sentGreeting    bool // TargetPortalGroupTag/TargetAlias sent
	declaredMaxRecv bool // the target's MaxRecvDataSegmentLength sent
}

// NewConversation starts the login of one connection.
func NewConversation(p Policy) *Conversation { return newConversation(p, rand.Reader) }

func newConversation(p Policy, random io.Reader) *Conversation {
	c := &Conversation{
		policy:       p,
		offer:        normalizeOffer(p.Offer),
		params:       DefaultParams(),
		random:       random,
		seen:         make(map[string]struct{}),
		targetOffers: make(map[string]string),
	}
	if !p.Leading && p.Session != nil {
		c.params = *p.Session
		c.params.connectionDefaults()
	}
	return c
}

// Params are the negotiated values; final once a Response has Done set.
func (c *Conversation) Params() Params { return c.params }

// AuthMethod is the authentication the login went through: "CHAP" or
// "None" (also when the initiator skipped the security stage).
func (c *Conversation) AuthMethod() string {
	if c.authMethod == "" {
		return authNone
	}
	return c.authMethod
}

// Stage is the current login stage (StageFullFeature once done).
func (c *Conversation) Stage() uint8 { return c.stage }

// Err is why the login was refused, for the log; nil while it goes on or
// after success. It never contains secrets.
func (c *Conversation) Err() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// Step consumes one Login Request and returns the Login Response to send.
func (c *Conversation) Step(req Request) Response {
	if c.err != nil {
		return c.failure()
	}
	if c.done {
		return c.fail(refuse(StatusInitiatorError, "login request after the login completed"))
	}
	c.steps++
	if c.steps > maxSteps {
		return c.fail(refuse(StatusInitiatorError, "login not finished after %d requests", maxSteps))
	}
	if e := c.checkStages(req); e != nil {
		return c.fail(e)
	}
	if c.out.pending() {
		return c.nextPiece(req)
	}
	if req.Continue {
		return c.collect(req)
	}
	text := append(c.inText, req.Text...)
	c.inText = nil
	kvs, err := ParseText(text)
	if err != nil {
		return c.fail(refuse(StatusInitiatorError, "%v", err))
	}
	c.pairs += len(kvs)
	if c.pairs > MaxPairs {
		return c.fail(refuse(StatusInitiatorError, "more than %d keys in one login", MaxPairs))
	}
	reply, transit, e := c.negotiate(req, kvs)
	if e != nil {
		return c.fail(e)
	}
	return c.send(EncodeText(reply), transit, req.NSG)
}

// checkStages enforces the CSG/NSG/T/C rules of RFC 7143 §11.12: the first
// request starts in the security or operational stage, later ones stay in
// the stage the target moved to, and a transit only goes forward.
func (c *Conversation) checkStages(req Request) *loginError {
	if !c.started {
		if req.CSG != StageSecurity && req.CSG != StageOperational {
			return refuse(StatusInitiatorError, "first request in stage %d", req.CSG)
		}
		c.started = true
		c.stage = req.CSG
	} else if req.CSG != c.stage {
		return refuse(StatusInitiatorError, "request in stage %d while the login is in stage %d", req.CSG, c.stage)
	}
	if req.Transit && req.Continue {
		return refuse(StatusInitiatorError, "T and C bits both set")
	}
	if req.Transit && (req.NSG <= req.CSG || (req.NSG != StageOperational && req.NSG != StageFullFeature)) {
		return refuse(StatusInitiatorError, "invalid transit from stage %d to stage %d", req.CSG, req.NSG)
	}
	return nil
}

// negotiate answers the keys of one complete request and decides whether
// the response transits to req.NSG.
func (c *Conversation) negotiate(req Request, kvs []KV) ([]KV, bool, *loginError) {
	if !c.resolved {
		if e := c.resolve(kvs); e != nil {
			return nil, false, e
		}
	}
	var reply []KV
	if !c.sentGreeting {
		c.sentGreeting = true
		reply = append(reply, c.greeting()...)
	}
	chapKeys := chapInput{}
	agreedCHAP := false
	for _, kv := range negotiationOrder(kvs) {
		answer, e := c.answer(kv, chapKeys, &agreedCHAP)
		if e != nil {
			return nil, false, e
		}
		if answer != nil {
			reply = append(reply, *answer)
		}
	}

	transit := false
	switch c.stage {
	case StageSecurity:
		out, e := c.chap.step(chapKeys, agreedCHAP, c.random)
		if e != nil {
			return nil, false, e
		}
		reply = append(reply, out...)
		if c.chap.state == chapAuthenticated {
			c.authenticated = true
		}
		if transit, e = c.securityTransit(req); e != nil {
			return nil, false, e
		}
	case StageOperational:
		transit = req.Transit
		// Offers wait for the initiator's transit request: by then it has
		// offered all it wanted, so an offer cannot cross one of its own.
		if transit && !c.offersMade {
			c.offersMade = true
			if offers := c.makeOffers(); len(offers) > 0 {
				// The initiator must answer before the login may end.
				reply = append(reply, offers...)
				transit = false
			}
		}
	}
	if !c.declaredMaxRecv && (c.stage == StageOperational || (transit && req.NSG == StageFullFeature)) {
		reply = append(reply, c.declareMaxRecv())
	}
	return reply, transit, nil
}

// securityTransit decides a transit out of the security stage: only once
// the initiator is authenticated (RFC 7143 §6.3, §12).
func (c *Conversation) securityTransit(req Request) (bool, *loginError) {
	if !req.Transit {
		return false, nil
	}
	if !c.authenticated && c.authMethod == "" {
		if c.decision.CHAP != nil {
			return false, refuse(StatusAuthFailed, "authentication required but no AuthMethod offered")
		}
		// AuthMethod defaults to None.
		c.authMethod = authNone
		c.authenticated = true
	}
	// While CHAP is under way the target holds the stage (T=0).
	return c.authenticated, nil
}

func (c *Conversation) fail(e *loginError) Response {
	c.err = e
	return c.failure()
}

func (c *Conversation) failure() Response {
	return Response{CSG: c.stage, Status: c.err.status}
}

// finish makes the negotiated values final.
func (c *Conversation) finish() {
	c.done = true
	c.targetOffers = nil
	c.params.FirstBurstLength = min(c.params.FirstBurstLength, c.params.MaxBurstLength)
}
