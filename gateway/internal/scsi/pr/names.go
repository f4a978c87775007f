package pr

import "github.com/rbdgw/rbdgw/gateway/config"

// iSCSI names compare the way RFC 3722 normalises them, lower case, by the
// one function every side uses: the configuration's ACLs and LUN views,
// the login (which canonicalises the InitiatorName it is sent) and the
// reservations here, so that a name spelt differently is never one
// initiator to the access rule and another to a reservation (issue 11,
// item 8). strings.EqualFold would not do: it folds more than lower case
// does ("ſ" and "s", the Kelvin sign and "k"), so two names the ACL tells
// apart would be one registrant.

// NameKey is the form of an iSCSI name or port identifier
// ("<name>,i,0x<isid>", "<name>,t,0x<tpgt>") reservations compare.
func NameKey(s string) string { return config.CanonicalName(s) }

// SameName reports whether two names or port identifiers are the same.
func SameName(a, b string) bool { return NameKey(a) == NameKey(b) }
