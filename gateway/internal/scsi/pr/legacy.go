package pr

// crhExempt reports whether an SPC-2 RESERVE or RELEASE from p completes
// with GOOD and changes nothing because p already has access through the
// persistent reservation (SPC-4 5.13.3, CRH=1): p holds it, or p is a
// registrant while a registrants-only or all-registrants reservation exists.
func crhExempt(st *State, p Port) bool {
	r := st.Reservation
	if r == nil || !st.isRegistered(p) {
		return false
	}
	return st.isHolder(p) || isRegistrantsOnly(r.Type) || r.AllRegistrants
}

// legacyReserve handles RESERVE(6/10). While persistent reservation
// registrations exist every other RESERVE conflicts (SPC-2 5.5.1); an
// SPC-2 reservation held by another I_T nexus conflicts; the holder may
// reserve again.
func legacyReserve(st *State, p Port) error {
	if crhExempt(st, p) {
		return nil
	}
	if len(st.Registrations) > 0 {
		return conflict()
	}
	if st.Legacy != nil && !st.Legacy.Same(p) {
		return conflict()
	}
	holder := p
	st.Legacy = &holder
	return nil
}

// legacyRelease handles RELEASE(6/10). A RELEASE from an I_T nexus that
// holds nothing completes with GOOD and changes nothing.
func legacyRelease(st *State, p Port) error {
	if crhExempt(st, p) {
		return nil
	}
	if len(st.Registrations) > 0 {
		return conflict()
	}
	if st.holdsLegacy(p) {
		st.Legacy = nil
	}
	return nil
}
