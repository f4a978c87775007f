//go:build pacific

package rbd

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
)

// TestReadAtContext reads what ReadAt reads, and a read abandoned by its
// context leaves the image usable and closable: the late completion
// releases the read lock it kept.
func TestReadAtContext(t *testing.T) {
	c := sharedCluster(t)
	img := newImage(t, c, 8<<20, CreateOptions{})
	data := randomBytes(7, 1<<20)
	mustWrite(t, img, data, 0)
	got := make([]byte, len(data))
	if _, err := img.ReadAtContext(context.Background(), got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAtContext: %v, equal %v", err, bytes.Equal(got, data))
	}
	// Abandon many reads in flight: cancelled while librbd works on them.
	var wg sync.WaitGroup
	for k := range 64 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			buf := make([]byte, 256<<10)
			if k%2 == 0 {
				cancel()
			}
			go cancel()
			_, err := img.ReadAtContext(ctx, buf, int64(k%4)<<20)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("abandoned read: %v", err)
			}
		})
	}
	wg.Wait()
	mustWrite(t, img, data[4096:8192], 4096) // writes still run
	if _, err := img.ReadAtContext(context.Background(), got[:8192], 0); err != nil || !bytes.Equal(got[:8192], data[:8192]) {
		t.Fatalf("after abandoned reads: %v", err)
	}
	if err := img.Close(); err != nil { // waits for every read lock
		t.Fatalf("Close: %v", err)
	}
}
