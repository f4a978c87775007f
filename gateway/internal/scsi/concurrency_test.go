package scsi

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
)

// Many sessions issue I/O, mode changes and task management at once; run
// with -race. Every session writes its own blocks and must read back what
// it wrote.
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t)
	const sessions, rounds = 8, 50
	nexuses := make([]*Nexus, sessions)
	for i := range nexuses {
		nexuses[i] = e.login(fmt.Sprintf("iqn.2024-01.org.example:c%d", i), byte(10+i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, sessions*rounds)
	for i, n := range nexuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				lba := uint32(i*64 + r%64)
				data := fill(testBlockSize, byte(i*rounds+r))
				tag := uint32(r)
				attr := TaskSimple
				if r%10 == 0 {
					attr = TaskOrdered
				}
				// Unit attentions from the other goroutine are retried, as
				// an initiator would.
				run := func(cmd *Command) Result {
					for {
						res := e.tgt.Execute(context.Background(), cmd)
						// Fixed-format sense: this test never sets D_SENSE.
						if res.Status != StatusCheckCondition || res.Sense[2]&0x0f != senseUnitAttention {
							return res
						}
					}
				}
				w := run(&Command{Nexus: n, CDB: cdb10(opWrite10, lba, 1), Tag: tag, Attr: attr, DataOut: data})
				if w.Status != StatusGood {
					if !w.Aborted {
						errs <- fmt.Errorf("session %d round %d: write %+v", i, r, w)
					}
					continue
				}
				rd := run(&Command{Nexus: n, CDB: cdb10(opRead10, lba, 1), Tag: tag})
				if rd.Status == StatusGood && !bytes.Equal(rd.Data, data) {
					errs <- fmt.Errorf("session %d round %d: read back other data", i, r)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := 0; r < 20; r++ {
			e.tgt.Execute(context.Background(), &Command{Nexus: e.n, CDB: cdbModeSense6(true, pcCurrent, pageAll, 0, 255), Tag: 1})
			e.lu.AccessStateChanged()
			e.tgt.TaskManagement(e.n, TMFAbortTaskSet, 0, 0)
			e.tgt.Execute(context.Background(), &Command{Nexus: e.n, CDB: cdbReportLUNs(0, 64), Tag: 2})
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
