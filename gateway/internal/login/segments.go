package login

// pendingReply is the rest of a response longer than one PDU, and the
// transit its last piece carries.
type pendingReply struct {
	rest    []byte
	transit bool
	nsg     uint8
}

func (p *pendingReply) pending() bool { return len(p.rest) > 0 }

// send returns the response for text, split with the C bit into pieces of at
// most maxLoginSegment bytes; only the last piece may transit
// (RFC 7143 §11.13.2).
func (c *Conversation) send(text []byte, transit bool, nsg uint8) Response {
	if len(text) > maxLoginSegment {
		c.out = pendingReply{rest: text[maxLoginSegment:], transit: transit, nsg: nsg}
		// Cap the piece so that an append by the caller cannot overwrite the rest.
		return Response{Continue: true, CSG: c.stage, Text: text[:maxLoginSegment:maxLoginSegment]}
	}
	r := Response{CSG: c.stage, Text: text}
	if transit {
		r.Transit, r.NSG = true, nsg
		c.stage = nsg
		if nsg == StageFullFeature {
			c.finish()
			r.Done = true
		}
	}
	return r
}

// nextPiece answers the empty request an initiator sends for the next piece
// of a continued response.
func (c *Conversation) nextPiece(req Request) Response {
	if req.Continue || len(req.Text) > 0 {
		return c.fail(refuse(StatusInitiatorError, "request text while the target's response continues"))
	}
	p := c.out
	c.out = pendingReply{}
	return c.send(p.rest, p.transit, p.nsg)
}

// collect keeps a piece of a request sent with the C bit; the target answers
// each piece with an empty response and negotiates once the last arrives.
func (c *Conversation) collect(req Request) Response {
	if len(c.inText)+len(req.Text) > maxCollectedText {
		return c.fail(refuse(StatusInitiatorError, "continued request longer than %d bytes", maxCollectedText))
	}
	c.inText = append(c.inText, req.Text...)
	return Response{CSG: c.stage}
}
