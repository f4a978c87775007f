package cluster

// CanonicalPortal is the form portals are stored and compared in
// ("ip:port", IPv6 in brackets, the default port added).
func CanonicalPortal(p string) string { return canonicalPortal(p) }

// ReportedPhysicalBlockSize is the physical block size initiators see for
// the disk (the stored value, or its default).
func (d Disk) ReportedPhysicalBlockSize() uint32 { return d.physicalBlockSize() }
