package prstore

import "context"

// Resync reads every pr/ key again and applies what is newer than what
// the stores know: a gateway that was cut off from etcd calls it before it
// admits commands again, instead of trusting its watch to have caught up.
func (h *Hub) Resync(ctx context.Context) error {
	_, err := h.reloadAll(ctx)
	return err
}
