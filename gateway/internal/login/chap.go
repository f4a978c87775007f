package login

import (
	"crypto/md5"
	"crypto/subtle"
	"io"
	"strconv"
)

// chapChallengeLength is the size of the target's challenge: as long as the
// MD5 digest, the minimum RFC 7143 §12.1.3 recommends.
const chapChallengeLength = 16

// maxPeerChallenge bounds the initiator's mutual challenge (RFC 7143 §12.1.3
// allows binary values up to 1024 bytes).
const maxPeerChallenge = 1024

// chapState is where the CHAP exchange of RFC 7143 §12.1.3 stands.
type chapState uint8

const (
	chapIdle          chapState = iota // AuthMethod=CHAP not agreed
	chapWaitAlgorithm                  // agreed; CHAP_A expected
	chapWaitResponse                   // challenge sent; CHAP_N/CHAP_R expected
	chapAuthenticated                  // initiator verified
)

// chapInput are the CHAP keys of one request.
type chapInput map[string]string

func (in chapInput) has(k string) bool { _, ok := in[k]; return ok }

// chapExchange is the target side of one CHAP exchange.
type chapExchange struct {
	state     chapState
	creds     Credentials
	id        byte
	challenge []byte
}

// chapResponse computes MD5(identifier || secret || challenge) (RFC 1994 §4.1).
func chapResponse(id byte, secret string, challenge []byte) []byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	return h.Sum(nil)
}

// step advances the exchange with the CHAP keys of one request. justAgreed
// is true when AuthMethod=CHAP was agreed in this same request, so an absent
// CHAP_A is not yet an error. It returns the keys to send.
func (x *chapExchange) step(in chapInput, justAgreed bool, random io.Reader) ([]KV, *loginError) {
	switch x.state {
	case chapIdle:
		if len(in) > 0 {
			return nil, refuse(StatusAuthFailed, "CHAP keys without AuthMethod=CHAP")
		}
		return nil, nil
	case chapWaitAlgorithm:
		if in.has(keyCHAPI) || in.has(keyCHAPC) || in.has(keyCHAPN) || in.has(keyCHAPR) {
			return nil, refuse(StatusAuthFailed, "CHAP response before the challenge")
		}
		if !in.has(keyCHAPA) {
			if justAgreed {
				return nil, nil
			}
			return nil, refuse(StatusAuthFailed, "CHAP_A missing")
		}
		return x.challengeInitiator(in[keyCHAPA], random)
	case chapWaitResponse:
		if in.has(keyCHAPA) {
			return nil, refuse(StatusAuthFailed, "CHAP_A repeated")
		}
		if !in.has(keyCHAPN) || !in.has(keyCHAPR) {
			return nil, refuse(StatusAuthFailed, "CHAP_N or CHAP_R missing")
		}
		return x.verify(in)
	default:
		if len(in) > 0 {
			return nil, refuse(StatusAuthFailed, "CHAP keys after authentication")
		}
		return nil, nil
	}
}

func (x *chapExchange) challengeInitiator(algorithms string, random io.Reader) ([]KV, *loginError) {
	alg, ok := selectCHAPAlgorithm(algorithms)
	if !ok {
		// RFC 7143 §12.1.3: without an acceptable algorithm the target
		// answers with a login reject, "Authentication Failure".
		return nil, refuse(StatusAuthFailed, "no acceptable CHAP_A algorithm")
	}
	buf := make([]byte, 1+chapChallengeLength)
	if _, err := io.ReadFull(random, buf); err != nil {
		return nil, refuse(StatusTargetError, "no random challenge: %v", err)
	}
	x.id, x.challenge = buf[0], buf[1:]
	x.state = chapWaitResponse
	return []KV{
		{keyCHAPA, alg},
		{keyCHAPI, strconv.Itoa(int(x.id))},
		{keyCHAPC, encodeHex(x.challenge)},
	}, nil
}

// verify checks the initiator's answer and, for mutual CHAP, answers the
// initiator's challenge. The initiator is verified before the target
// computes anything with its own secret.
func (x *chapExchange) verify(in chapInput) ([]KV, *loginError) {
	got, err := decodeBinary(in[keyCHAPR])
	if err != nil {
		return nil, refuse(StatusAuthFailed, "CHAP_R is not a binary value")
	}
	want := chapResponse(x.id, x.creds.Secret, x.challenge)
	userOK := subtle.ConstantTimeCompare([]byte(in[keyCHAPN]), []byte(x.creds.User))
	responseOK := subtle.ConstantTimeCompare(got, want)
	if userOK&responseOK != 1 {
		return nil, refuse(StatusAuthFailed, "CHAP name or response does not match")
	}
	wantsMutual := in.has(keyCHAPI) || in.has(keyCHAPC)
	if !wantsMutual {
		x.state = chapAuthenticated
		return nil, nil
	}
	if !in.has(keyCHAPI) || !in.has(keyCHAPC) {
		return nil, refuse(StatusAuthFailed, "mutual CHAP needs both CHAP_I and CHAP_C")
	}
	if x.creds.MutualUser == "" || x.creds.MutualSecret == "" {
		return nil, refuse(StatusAuthFailed, "mutual CHAP requested but not configured")
	}
	// RFC 7143 §12.1.3: a secret must not serve both directions, or a
	// second connection could make the target answer its own challenge.
	if subtle.ConstantTimeCompare([]byte(x.creds.Secret), []byte(x.creds.MutualSecret)) == 1 {
		return nil, refuse(StatusAuthFailed, "mutual CHAP secret equals the initiator secret")
	}
	id, err := parseRange(in[keyCHAPI], 0, 255)
	if err != nil {
		return nil, refuse(StatusAuthFailed, "CHAP_I out of range")
	}
	peerChallenge, err := decodeBinary(in[keyCHAPC])
	if err != nil || len(peerChallenge) == 0 || len(peerChallenge) > maxPeerChallenge {
		return nil, refuse(StatusAuthFailed, "CHAP_C is not a usable challenge")
	}
	if subtle.ConstantTimeCompare(peerChallenge, x.challenge) == 1 {
		return nil, refuse(StatusAuthFailed, "initiator reflected the target's CHAP challenge")
	}
	x.state = chapAuthenticated
	return []KV{
		{keyCHAPN, x.creds.MutualUser},
		{keyCHAPR, encodeHex(chapResponse(byte(id), x.creds.MutualSecret, peerChallenge))},
	}, nil
}
