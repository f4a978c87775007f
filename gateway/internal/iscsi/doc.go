// Package iscsi is the iSCSI target engine (RFC 7143, target side): it
// accepts TCP connections, runs logins through package login, keeps
// sessions and their command windows, moves data for SCSI commands and
// hands them to a scsi.Target.
//
// API for the daemon:
//
//	srv := iscsi.NewServer(iscsi.Options{Logger: lg, Tuning: cfg.Tuning})
//	srv.SetTarget(iscsi.TargetSpec{IQN: ..., Device: dev, TPGT: 1, Portals: ..., Access: ...})
//	srv.SetDiscoveryAuth(creds)
//	go srv.Serve(listener)          // one per portal
//	srv.Shutdown(ctx)
//
// Goroutines of a connection: serve (login, then the full feature phase
// loop), a reader (PDUs into a channel; solicited Data-Out payloads and a
// WRITE's immediate data straight into the command's buffer, see
// datasink.go), a writer (drains a queue with one writev per wake; the loop
// hands it everything one batch of events produced at once, or writes the
// batch itself, without waiting for the socket, when the writer is idle
// and nothing is queued, leaving the writer what the socket did not take,
// see flushDirect), and one per SCSI command or task management call
// while it runs in the SCSI layer; they report back on channels that also
// watch the loop's end. Connection and session state belong to whoever
// holds the loop (ffpState.loopMu): the serve goroutine while it handles
// an event, the reader, which handles what it read itself when the loop is
// idle, sparing a goroutine wake-up per command (readLoop), or the
// goroutine delivering a started command's completion (task.Done). Plain
// reads and writes of at most 128 KiB to a logical unit that answers in
// microseconds run on the loop's holder itself instead of a goroutine of
// their own (inline.go); should one stall, the loop passes to another
// goroutine (a new serve loop, or the serve goroutine and a new reader
// when the reader stalled), so one goroutine at a time owns the state. A
// panic in any of them closes only that connection.
//
// Protocol choices:
//   - ErrorRecoveryLevel 0 and one connection per session (MaxConnections=1
//     is negotiated). A login with the TSIH and CID of a live session
//     reinstates its connection; a leading login with the same initiator
//     name, ISID and target port reinstates the session.
//   - DefaultTime2Retain=0: a session whose connection fails ends at once.
//   - Non-immediate requests run in CmdSN order; MaxCmdSN = ExpCmdSN +
//     depth - 1 - (commands still running). Requests outside the window are
//     dropped silently.
//   - Write data: immediate data and the unsolicited burst first, then R2Ts
//     (at most MaxOutstandingR2T of at most MaxBurstLength each). A Data-Out
//     out of sequence (DataSN, offset, length) or with a bad data digest
//     ends its command with CHECK CONDITION (ABORTED COMMAND and the iSCSI
//     condition of RFC 7143 section 11.4.7.2) once the data in flight has
//     arrived; a Data-Out for an unknown TTT is rejected.
//   - Read data: Data-In PDUs of the initiator's MaxRecvDataSegmentLength in
//     MaxBurstLength sequences, GOOD status in the last one (S bit). A READ
//     is lent a pooled buffer for its data (scsi.Command.DataIn), returned
//     once the Data-In is written.
//   - Residuals compare EDTL with what the CDB transfers
//     (scsi.Target.DataOutLengthLUN for Data-Out, the result length for
//     Data-In).
//   - Task management responses go out after every affected task has
//     answered or been aborted silently.
package iscsi
