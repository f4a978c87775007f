package scsi

import (
	"context"
	"errors"
	"sync"
	"time"
)

// taskKey identifies a task: the I_T nexus and the initiator task tag.
type taskKey struct {
	nexus string
	tag   uint32
}

// taskEntry is a task in the task set of a logical unit.
type taskEntry struct {
	key           taskKey
	initiatorPort string
	attr          TaskAttr
	// ctx is the task's context: its parent's, and cancelled by abort.
	ctx taskCtx

	// Guarded by taskSet.mu.
	//
	// done is closed when the task has left the task set. It is made only
	// when something waits for the task (an ORDERED task, task
	// management), which most tasks never see.
	done    chan struct{}
	aborted bool
	// reportAborted: answer TASK ABORTED status (the task was aborted by
	// another I_T nexus while TAS=1); otherwise no response is sent.
	reportAborted bool
}

// taskSet tracks the running tasks of one logical unit so that task
// management can abort them and ORDERED tasks can wait for their
// predecessors. Its lock is held only to add or remove an entry; SIMPLE
// tasks never wait for one another.
type taskSet struct {
	mu    sync.Mutex
	tasks map[taskKey]*taskEntry
	// lastOrdered is the most recent ORDERED task still in the set: later
	// SIMPLE tasks start only after it completed.
	lastOrdered *taskEntry
}

var errOverlapped = errors.New("overlapped task tag")

func (s *taskSet) init() { s.tasks = make(map[taskKey]*taskEntry) }

// enter fills e (which the caller allocates with the rest of the task) and
// adds it to the set, and returns what the task must wait for before it
// runs (SAM-5 8.5): an ORDERED task waits for every task that entered
// before it, a SIMPLE task for the last ORDERED task, a HEAD OF QUEUE task
// for nothing.
func (s *taskSet) enter(parent context.Context, e *taskEntry, n *Nexus, tag uint32, attr TaskAttr) ([]<-chan struct{}, error) {
	waits, _, err := s.add(parent, e, n, tag, attr, true)
	return waits, err
}

// enterNow is enter for a task that must not wait: it adds e, and reports
// true, only when the task may run at once.
func (s *taskSet) enterNow(parent context.Context, e *taskEntry, n *Nexus, tag uint32, attr TaskAttr) bool {
	_, added, _ := s.add(parent, e, n, tag, attr, false)
	return added
}

func (s *taskSet) add(parent context.Context, e *taskEntry, n *Nexus, tag uint32, attr TaskAttr, mayWait bool) (waits []<-chan struct{}, added bool, err error) {
	*e = taskEntry{
		key:           taskKey{nexus: n.Key(), tag: tag},
		initiatorPort: n.InitiatorPort(),
		attr:          attr,
		ctx:           taskCtx{parent: parent},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.tasks[e.key]; dup {
		return nil, false, errOverlapped
	}
	switch attr {
	case TaskHeadOfQueue:
	case TaskOrdered:
		if !mayWait && len(s.tasks) > 0 {
			return nil, false, nil
		}
		for _, other := range s.tasks {
			waits = append(waits, other.doneLocked())
		}
		s.lastOrdered = e
	default: // SIMPLE, untagged and ACA are scheduled as SIMPLE
		if s.lastOrdered != nil {
			if !mayWait {
				return nil, false, nil
			}
			waits = append(waits, s.lastOrdered.doneLocked())
		}
	}
	s.tasks[e.key] = e
	return waits, true, nil
}

// doneLocked returns the channel closed when e leaves the set, making it
// if nobody asked before. taskSet.mu must be held and e be in the set.
func (e *taskEntry) doneLocked() chan struct{} {
	if e.done == nil {
		e.done = make(chan struct{})
	}
	return e.done
}

// leave removes a finished task and reports whether it was aborted and
// whether TASK ABORTED status must be returned. reusable says that nothing
// outside the task can still refer to e: it was not aborted (task
// management holds the entries it aborted), nobody waited for it, and its
// context's Done channel was never handed out.
func (s *taskSet) leave(e *taskEntry) (aborted, report, reusable bool) {
	s.mu.Lock()
	delete(s.tasks, e.key)
	if s.lastOrdered == e {
		s.lastOrdered = nil
	}
	aborted, report = e.aborted, e.reportAborted
	done := e.done
	s.mu.Unlock()
	private := e.ctx.release()
	if done != nil {
		close(done)
	}
	return aborted, report, !aborted && done == nil && private
}

// abort aborts every task match selects; report decides, per task, whether
// its initiator gets TASK ABORTED status. It returns the aborted tasks.
func (s *taskSet) abort(match func(*taskEntry) bool, report func(*taskEntry) bool) []*taskEntry {
	s.mu.Lock()
	var out []*taskEntry
	for _, e := range s.tasks {
		if e.aborted || !match(e) {
			continue
		}
		e.aborted = true
		e.reportAborted = report(e)
		e.doneLocked() // for waitDone
		out = append(out, e)
	}
	s.mu.Unlock()
	for _, e := range out {
		e.ctx.cancel()
	}
	return out
}

// find returns the task with key k, if it is in the set.
func (s *taskSet) find(k taskKey) *taskEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tasks[k]
}

// waitFor blocks until every channel is closed or ctx ends.
func waitFor(ctx context.Context, chans []<-chan struct{}) error {
	for _, c := range chans {
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitDone blocks until every aborted task has left the task set: task
// management answers only once the aborted tasks can no longer touch the
// medium.
func waitDone(tasks []*taskEntry) {
	for _, e := range tasks {
		<-e.done // made by abort, under the lock, before the task could leave
	}
}

// taskCtx is a task's context without an allocation per task: Err is the
// task's own cancellation or its parent's, and only a caller that waits on
// Done (an image that gives up waiting, a reservation store, a task
// waiting for its predecessors) gets a child context of the parent made
// for it.
type taskCtx struct {
	parent context.Context

	mu      sync.Mutex
	err     error           // once set, what Err keeps returning
	sub     context.Context // made by the first Done
	subStop context.CancelFunc
	// onCancel runs once when cancel is called (notify).
	onCancel func()
}

func (c *taskCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *taskCtx) Value(key any) any { return c.parent.Value(key) }

func (c *taskCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = c.parent.Err()
	}
	return c.err
}

func (c *taskCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub == nil {
		c.sub, c.subStop = context.WithCancel(c.parent)
		if c.err != nil {
			c.subStop()
		}
	}
	return c.sub.Done()
}

// cancel aborts the task.
func (c *taskCtx) cancel() {
	c.mu.Lock()
	if c.err == nil {
		c.err = context.Canceled
	}
	stop, fn := c.subStop, c.onCancel
	c.onCancel = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if fn != nil {
		fn()
	}
}

// notify makes cancel run fn (once), without the goroutine that waiting
// on Done would need. It reports false, arranging nothing, when the task
// was cancelled already.
func (c *taskCtx) notify(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.onCancel = fn
	return true
}

// release ends the context as the task leaves (detaching the child from
// its parent) and reports whether Done was never called.
func (c *taskCtx) release() bool {
	c.mu.Lock()
	stop := c.subStop
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	return stop == nil
}
