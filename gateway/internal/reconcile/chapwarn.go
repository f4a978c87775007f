package reconcile

import "github.com/rbdgw/rbdgw/gateway/config"

// warnNameOnlyAccess logs, once per target and Apply, a target that admits
// initiators on their name alone (issue 11, item 8): an ACL entry without
// CHAP credentials while the target has none either, or
// allow_any_initiator without target CHAP. An initiator name is no secret
// (it is sent in clear at every login, and listed by every host); anyone
// on the storage network can claim it.
func (r *Reconciler) warnNameOnlyAccess(t config.Target) {
	if t.CHAP != nil {
		return // every admitted initiator authenticates, with its own or the target's credentials
	}
	var names []string
	for _, a := range t.ACLs {
		if a.CHAP == nil {
			names = append(names, a.InitiatorIQN)
		}
	}
	if len(names) == 0 && !t.AllowAnyInitiator {
		return
	}
	r.log.Warn("target admits initiators by name alone, without CHAP: anyone who can reach the portal can claim such a name; set chap on the target or on these ACLs",
		"target", t.IQN, "initiators", names, "allow_any_initiator", t.AllowAnyInitiator)
}
