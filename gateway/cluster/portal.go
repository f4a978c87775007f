package cluster

// CanonicalPortal is the form portals are stored and compared in
// ("ip:port", IPv6 in brackets, the default port added).
func CanonicalPortal(p string) string { return canonicalPortal(p) }
