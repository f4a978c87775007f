package alua

// FenceReport is a takeover that fenced the clients holding a disk's
// lock (ManagerOptions.OnFence).
type FenceReport struct {
	Disk string
	// From is the owner recorded before the takeover (this gateway's
	// name when it already owned the disk and a client did not hand the
	// lock over).
	From string
	// Epoch is the owner epoch after the takeover.
	Epoch uint64
	// Clients are the Ceph client addresses put in the OSD blocklist.
	Clients []string
	// Reason says why the disk was taken over; Err what failed of the
	// fencing (some clients may not be fenced).
	Reason string
	Err    error
}
