package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
)

const chunkBytes = 4096

// multipath sends commands through one portal at a time and moves to the
// next on a connection failure or when the path stays not ready, like a
// host's multipath layer with a failover policy.
type multipath struct {
	c        *common
	cur      int
	s        *session
	retryFor time.Duration

	retries   int // failed attempts (errors, not ready)
	failovers int
	// unitAttentions counts commands repeated because the target reported
	// a change (new LUN, ownership move): normal, not a failure.
	unitAttentions int
	// downSince is when the current run of failures started.
	downSince time.Time
}

// do runs one command until it succeeds or fails for a reason a path
// change cannot fix; the result has GOOD status.
func (m *multipath) do(cdb, data []byte, readLen int) (*iscsitest.Result, error) {
	notReadySince := time.Time{}
	for {
		if m.s == nil {
			s, err := dial(m.c, m.c.portals[m.cur])
			if err != nil {
				if err := m.failed(err.Error()); err != nil {
					return nil, err
				}
				m.next()
				continue
			}
			m.s = s
			emit(map[string]any{"event": "connected", "portal": s.portal, "unix_ms": time.Now().UnixMilli()})
		}
		r, err := m.s.do(cdb, data, readLen)
		switch {
		case err != nil:
			if err := m.failed(err.Error()); err != nil {
				return nil, err
			}
			m.s.close()
			m.s = nil
			m.next()
			continue
		case r.Status == statusGood:
			m.recovered()
			return r, nil
		}
		key, _, _ := senseOf(r)
		switch {
		case r.Status == statusCheck && key == senseUnitAttention:
			m.unitAttentions++ // the host learns about the change and repeats
		case r.Status == statusCheck && key == senseNotReady, r.Status == statusBusy:
			if err := m.failed(describe(r)); err != nil {
				return nil, err
			}
			if notReadySince.IsZero() {
				notReadySince = time.Now()
			}
			if time.Since(notReadySince) > 10*time.Second {
				m.s.close()
				m.s = nil
				m.next()
				notReadySince = time.Time{}
				continue
			}
			time.Sleep(100 * time.Millisecond)
		default:
			return r, fmt.Errorf("through %s: %s", m.s.portal, describe(r))
		}
	}
}

// failed records a failed attempt; it gives up after retryFor without
// success.
func (m *multipath) failed(why string) error {
	m.retries++
	if m.downSince.IsZero() {
		m.downSince = time.Now()
		emit(map[string]any{"event": "path-error", "portal": m.c.portals[m.cur], "error": why, "unix_ms": m.downSince.UnixMilli()})
	}
	if time.Since(m.downSince) > m.retryFor {
		return fmt.Errorf("no path worked for %v; last error: %s", m.retryFor, why)
	}
	return nil
}

func (m *multipath) recovered() {
	if m.downSince.IsZero() {
		return
	}
	now := time.Now()
	emit(map[string]any{"event": "recovered", "portal": m.s.portal, "unix_ms": now.UnixMilli(),
		"outage_ms": now.Sub(m.downSince).Milliseconds()})
	m.downSince = time.Time{}
}

func (m *multipath) next() {
	m.cur = (m.cur + 1) % len(m.c.portals)
	m.failovers++
	time.Sleep(200 * time.Millisecond)
}

// pattern fills b with the content of chunk k in pass p of the run seed.
func pattern(b []byte, seed uint64, k, p int) {
	r := rand.New(rand.NewPCG(seed, uint64(k)<<32|uint64(p)))
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
}

func writeVerify(args []string) error {
	fs := flag.NewFlagSet("write-verify", flag.ContinueOnError)
	var c common
	c.register(fs)
	chunks := fs.Int("chunks", 512, "4 KiB chunks to write")
	startLBA := fs.Uint("lba", 0, "first LBA")
	interval := fs.Duration("interval", 0, "pause between writes")
	duration := fs.Duration("duration", 0, "keep rewriting the chunks in passes for this long")
	retryFor := fs.Duration("retry-for", 90*time.Second, "give up when no path works for this long")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "pattern seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	m := &multipath{c: &c, retryFor: *retryFor}
	r, err := m.do([]byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, 8) // READ CAPACITY(10)
	if err != nil {
		return err
	}
	bs := binary.BigEndian.Uint32(r.Data[4:8])
	if bs == 0 || chunkBytes%bs != 0 {
		return fmt.Errorf("block size %d does not divide %d", bs, chunkBytes)
	}
	per := uint32(chunkBytes / bs)
	lbaOf := func(k int) uint32 { return uint32(*startLBA) + uint32(k)*per }

	written := make([]int, *chunks) // pass of the last write that succeeded
	buf := make([]byte, chunkBytes)
	start := time.Now()
	passes, total := 0, 0
	for pass := 0; ; pass++ {
		for k := range *chunks {
			pattern(buf, *seed, k, pass)
			if _, err := m.do(rw10(opWrite10, lbaOf(k), uint16(per)), buf, 0); err != nil {
				return fmt.Errorf("write of chunk %d: %w", k, err)
			}
			written[k] = pass
			total++
			if total%64 == 0 {
				emit(map[string]any{"event": "progress", "written": total, "portal": m.s.portal})
			}
			if *interval > 0 {
				time.Sleep(*interval)
			}
		}
		passes++
		if time.Since(start) >= *duration {
			break
		}
	}
	mismatches := 0
	want := make([]byte, chunkBytes)
	for k := range *chunks {
		r, err := m.do(rw10(opRead10, lbaOf(k), uint16(per)), nil, chunkBytes)
		if err != nil {
			return fmt.Errorf("read of chunk %d: %w", k, err)
		}
		pattern(want, *seed, k, written[k])
		if !bytes.Equal(r.Data, want) {
			mismatches++
			if mismatches <= 5 {
				emit(map[string]any{"event": "mismatch", "chunk": k, "pass": written[k]})
			}
		}
	}
	emit(map[string]any{"event": "done", "chunks": *chunks, "passes": passes, "writes": total,
		"failovers": m.failovers, "retries": m.retries, "unit_attentions": m.unitAttentions, "mismatches": mismatches,
		"portal": m.s.portal, "elapsed_ms": time.Since(start).Milliseconds()})
	if m.s != nil {
		m.s.close()
	}
	if mismatches > 0 {
		return errors.New("data read back differs from what was written")
	}
	return nil
}
