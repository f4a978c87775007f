package pr

import (
	"errors"
	"fmt"
)

// validate checks the invariants every committed State satisfies. It guards
// state read from disk or from a cluster store, and tests use it after
// every transition.
func (st *State) validate() error {
	if len(st.Registrations) > maxRegistrations {
		return fmt.Errorf("%d registrations exceed the limit of %d", len(st.Registrations), maxRegistrations)
	}
	for i, r := range st.Registrations {
		if r.Key == 0 {
			return fmt.Errorf("registration %d has a zero key", i)
		}
		for _, o := range st.Registrations[:i] {
			if o.Port.Same(r.Port) {
				return fmt.Errorf("I_T nexus %s|%s registered twice", r.Port.InitiatorPort, r.Port.TargetPort)
			}
		}
	}
	if r := st.Reservation; r != nil {
		if !validType(r.Type) {
			return fmt.Errorf("reservation type %#x is not valid", r.Type)
		}
		if r.AllRegistrants != isAllRegistrants(r.Type) {
			return errors.New("all-registrants flag does not match the reservation type")
		}
		if len(st.Registrations) == 0 {
			return errors.New("reservation without registrations")
		}
		if r.AllRegistrants {
			if r.Key != 0 {
				return errors.New("all-registrants reservation with a non-zero key")
			}
		} else {
			i := st.registration(r.Holder)
			if i < 0 {
				return errors.New("reservation holder is not registered")
			}
			if st.Registrations[i].Key != r.Key {
				return errors.New("reservation key differs from the holder's registration")
			}
		}
	}
	if st.Legacy != nil && (len(st.Registrations) > 0 || st.Reservation != nil) {
		return errors.New("SPC-2 reservation coexists with persistent reservation state")
	}
	return nil
}
