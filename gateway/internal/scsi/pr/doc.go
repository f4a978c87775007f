// Package pr is the reservation state machine of one logical unit: SPC-4
// persistent reservations (PERSISTENT RESERVE IN and OUT) and SPC-2
// RESERVE/RELEASE, with the SPC-4 rules that tie the two together
// (compatible reservation handling, CRH=1).
//
// The package is transport-free. The SCSI device server turns a CDB and its
// parameter data into a call on Manager and turns the returned Outcome into a
// SCSI status, sense data and unit attentions. All state lives behind a Store
// so that a cluster store can hold it and every gateway enforces the same
// registrations and reservation.
//
// Identity: a registration belongs to one I_T nexus, the pair (initiator
// port, target port). Registrations made with ALL_TG_PT=1 or SPEC_I_PT=1 are
// not supported; REPORT CAPABILITIES says so (ATP_C=0, SIP_C=0) and such
// requests end with INVALID FIELD IN PARAMETER LIST.
package pr
