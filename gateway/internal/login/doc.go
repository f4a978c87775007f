// Package login holds the login conversation of one iSCSI connection
// (RFC 7143 §6 text negotiation, §12 CHAP, §13 keys): the key=value text
// codec, the per-key negotiation functions and the security and operational
// stages that end in the full feature phase.
//
// The package is pure: no network, no goroutines, no clock. The iSCSI engine
// decodes each Login Request PDU, feeds its fields to Conversation.Step and
// sends back what Step returns.
package login
