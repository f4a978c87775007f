package scsi

import (
	"context"
	"errors"
	"testing"
)

// TestTaskCtx checks the task context against what context.WithCancel
// would give: cancelled by abort or by its parent, before or after Done
// was asked for, and reusable only while Done was never handed out.
func TestTaskCtx(t *testing.T) {
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()

	var c taskCtx
	c.parent = parent
	if c.Err() != nil {
		t.Fatalf("fresh context: %v", c.Err())
	}
	c.cancel()
	if !errors.Is(c.Err(), context.Canceled) || !closed(c.Done()) {
		t.Fatalf("cancelled before Done: err %v, done %v", c.Err(), closed(c.Done()))
	}
	if c.release() {
		t.Fatal("Done was handed out, yet the context says it is private")
	}

	c = taskCtx{parent: parent}
	done := c.Done()
	if closed(done) {
		t.Fatal("Done closed before any cancellation")
	}
	c.cancel()
	if !closed(done) || !errors.Is(c.Err(), context.Canceled) {
		t.Fatal("cancel after Done did not close it")
	}

	c = taskCtx{parent: parent}
	if !c.release() {
		t.Fatal("a context nobody waited on is not private")
	}
	c = taskCtx{parent: parent}
	done = c.Done()
	cancelParent()
	if !closed(done) || !errors.Is(c.Err(), context.Canceled) {
		t.Fatal("the parent's cancellation did not reach the task")
	}
	if !errors.Is((&taskCtx{parent: parent}).Err(), context.Canceled) {
		t.Fatal("Err ignores a cancelled parent")
	}
}
