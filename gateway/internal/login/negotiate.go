package login

import "slices"

// resultFunc is how a negotiated key's outcome follows from the offered
// value and the responder's own (RFC 7143 §6.2.2, §13).
type resultFunc uint8

const (
	fnMin resultFunc = iota + 1
	fnMax
	fnAnd
	fnOr
)

func (f resultFunc) String() string {
	switch f {
	case fnMin:
		return "Minimum"
	case fnMax:
		return "Maximum"
	case fnAnd:
		return "AND"
	case fnOr:
		return "OR"
	}
	return "unknown"
}

// resolveNumber applies a numerical result function.
func resolveNumber(fn resultFunc, offered, ours uint64) uint64 {
	if fn == fnMax {
		return max(offered, ours)
	}
	return min(offered, ours)
}

// resolveBool applies a Boolean result function.
func resolveBool(fn resultFunc, offered, ours bool) bool {
	if fn == fnOr {
		return offered || ours
	}
	return offered && ours
}

// Digest names (RFC 7143 §13.1).
const (
	digestCRC32C = "CRC32C"
	digestNone   = valueNone
)

// selectDigest answers a HeaderDigest/DataDigest list. RFC 7143 §6.2: the
// responder selects the first value of the proposer's list that it supports
// and allows for that proposer. The target implements both None and CRC32C;
// when it prefers digests it does not allow None to an initiator that can
// do CRC32C. ok is false when nothing listed is known.
func selectDigest(offered []string, preferCRC32C bool) (choice string, ok bool) {
	if preferCRC32C && slices.Contains(offered, digestCRC32C) {
		return digestCRC32C, true
	}
	for _, v := range offered {
		if v == digestNone || v == digestCRC32C {
			return v, true
		}
	}
	return "", false
}

// Authentication methods (RFC 7143 §12).
const (
	authCHAP = "CHAP"
	authNone = valueNone
)

// selectAuthMethod answers an AuthMethod list: CHAP when the target requires
// it, None otherwise. ok is false when the list lacks the needed method.
func selectAuthMethod(offered []string, chapRequired bool) (choice string, ok bool) {
	want := authNone
	if chapRequired {
		want = authCHAP
	}
	for _, v := range offered {
		if v == want {
			return want, true
		}
	}
	return "", false
}

// chapMD5 is the only CHAP algorithm the target accepts (CHAP_A=5, RFC 1994).
const chapMD5 = "5"

// selectCHAPAlgorithm picks the first acceptable algorithm of a CHAP_A list.
// Each element must be exactly "5": "56" or "05" are other algorithms.
func selectCHAPAlgorithm(offered string) (choice string, ok bool) {
	for _, v := range splitList(offered) {
		if v == chapMD5 {
			return chapMD5, true
		}
	}
	return "", false
}

// taskReportingRFC3720 is the only TaskReporting mode the target offers: no
// response fence, no fast abort (RFC 7143 §13.23).
const taskReportingRFC3720 = "RFC3720"

func selectTaskReporting(offered []string) (choice string, ok bool) {
	for _, v := range offered {
		if v == taskReportingRFC3720 {
			return v, true
		}
	}
	return "", false
}
