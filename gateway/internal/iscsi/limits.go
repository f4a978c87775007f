package iscsi

import "time"

// Bounds against hostile or broken initiators that are not tunable. The
// tunable ones are config.TuningLimits (connection_buffer_mib,
// gateway_buffer_mib, dataout_timeout, discovery_idle_timeout,
// connection_limit, connections_per_address, sessions_per_initiator);
// docs/operations.md, "Resource limits", describes both.
const (
	// maxUnsizedDataOut bounds the Data-Out kept for a command the SCSI
	// layer cannot size (a LUN the session does not see, an unknown
	// opcode): it fails there, and only this much of its data is read
	// into a buffer; the rest is solicited never.
	maxUnsizedDataOut = 64 << 10

	// maxTMFs bounds the task management functions a connection has in
	// progress (each waits on its own goroutine for the tasks it aborts).
	// An immediate one beyond it is rejected (Immediate Command Reject),
	// a non-immediate one answered "function rejected".
	maxTMFs = 16

	// maxIdleWorkers bounds the task goroutines a connection keeps waiting
	// for its next slow command (taskWorker); the others end with their
	// command, so that a burst of commands leaves no crowd behind.
	maxIdleWorkers = 32

	// The read buffer of a connection before its login completes, and
	// after: nothing large is allocated for a peer that sent nothing.
	loginReadBuffer = 1 << 10
	ffpReadBuffer   = 64 << 10

	// Failed CHAP logins from one source address delay that address's
	// next CHAP answers: chapBaseDelay after the first failure, doubling
	// with each further one up to chapMaxDelay; an address without a
	// failure for chapForget starts over (chapthrottle.go).
	chapBaseDelay = time.Second
	chapMaxDelay  = 30 * time.Second
	chapForget    = 10 * time.Minute
	// maxThrottledAddrs bounds the addresses remembered; beyond it the
	// oldest are forgotten.
	maxThrottledAddrs = 4096

	// Refusals at the connection limits are logged at most once per
	// refusalLogInterval per kind and address or initiator (access.go).
)
