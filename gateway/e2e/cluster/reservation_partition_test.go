package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
)

// PERSISTENT RESERVE OUT service actions and the type used here.
const (
	saRegister        = 0x00
	saReserve         = 0x01
	saPreemptAndAbort = 0x05
	typeWriteExcl     = 0x01
	keyX, keyY        = 0xabc, 0xdef
	// prLBA is the block the reservation tests write.
	prLBA = 8192
)

// prHost is one initiator's session through one gateway, driven one
// command at a time (except for the write left in flight).
type prHost struct {
	t      *testing.T
	c      *testCluster
	name   string
	portal string
	in     *iscsitest.Initiator
}

func (h *prHost) login() error {
	in, err := iscsitest.Dial(h.portal)
	if err != nil {
		return err
	}
	in.Timeout = 60 * time.Second
	_ = in.Conn.SetDeadline(time.Now().Add(60 * time.Second))
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: h.name, TargetName: h.c.iqn}); err != nil {
		in.Close()
		return err
	}
	_ = in.Conn.SetDeadline(time.Time{})
	h.in = in
	return nil
}

// do runs one command; err is a transport failure (the next command logs
// in again).
func (h *prHost) do(cdb, data []byte, readLen int) (*iscsitest.Result, error) {
	if h.in == nil {
		if err := h.login(); err != nil {
			return nil, err
		}
	}
	_ = h.in.Conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	cmd := &iscsitest.Cmd{CDB: cdb, Data: data, EDTL: uint32(len(data))}
	if readLen > 0 {
		cmd.Read, cmd.EDTL = true, uint32(readLen)
	}
	r, err := h.in.Do(cmd)
	if err != nil {
		h.close()
	}
	return r, err
}

func (h *prHost) close() {
	if h.in != nil {
		h.in.Close()
		h.in = nil
	}
}

// prout sends PERSISTENT RESERVE OUT and returns how it ended.
func (h *prHost) prout(sa byte, key, saKey uint64, typ byte) string {
	cdb := make([]byte, 10)
	cdb[0], cdb[1], cdb[2] = 0x5f, sa, typ
	binary.BigEndian.PutUint32(cdb[5:9], 24)
	param := make([]byte, 24)
	binary.BigEndian.PutUint64(param[0:8], key)
	binary.BigEndian.PutUint64(param[8:16], saKey)
	r, err := h.do(cdb, param, 0)
	return outcome(r, err)
}

// write writes pattern n to the block; read returns it.
func (h *prHost) write(n int) string {
	r, err := h.do(rw10(0x2a, prLBA), prBlock(n), 0)
	return outcome(r, err)
}

func (h *prHost) read() ([]byte, string) {
	r, err := h.do(rw10(0x28, prLBA), nil, 512)
	if o := outcome(r, err); o != "good" {
		return nil, o
	}
	return r.Data, "good"
}

// pollFor reads responses until c completes (true) or nothing arrives
// for wait (false; a dropped connection too).
func (h *prHost) pollFor(c *iscsitest.Cmd, wait time.Duration) bool {
	h.in.Timeout = wait
	defer func() {
		if h.in != nil {
			h.in.Timeout = 60 * time.Second
		}
	}()
	for !c.Done() {
		if _, err := h.in.Poll(); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				h.t.Logf("connection through %s: %v", h.portal, err)
				h.close()
			}
			return false
		}
	}
	return true
}

// must fails the test unless the command ended as want.
func (h *prHost) must(what, got, want string) {
	h.t.Helper()
	if got != want {
		h.t.Fatalf("%s through %s: %s, want %s", what, h.portal, got, want)
	}
}

func prBlock(n int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("reservation-%08d|", n)), 32)[:512]
}

// outcome names how a command ended: good, conflict, sense KEY/ASC/ASCQ,
// status 0xNN, or the transport error.
func outcome(r *iscsitest.Result, err error) string {
	switch {
	case err != nil:
		return "error: " + err.Error()
	case r.Status == 0:
		return "good"
	case r.Status == 0x18:
		return "conflict"
	case r.Status == 0x02:
		key, asc, ascq := senseOf(r.Sense)
		return fmt.Sprintf("sense %x/%02x/%02x", key, asc, ascq)
	}
	return fmt.Sprintf("status %#x", r.Status)
}

// senseOf decodes fixed or descriptor format sense data.
func senseOf(s []byte) (key, asc, ascq byte) {
	switch {
	case len(s) >= 4 && s[0]&0x7f >= 0x72:
		return s[1] & 0x0f, s[2], s[3]
	case len(s) >= 14:
		return s[2] & 0x0f, s[12], s[13]
	}
	return 0, 0, 0
}

// unitAttentions sends TEST UNIT READY until it returns GOOD or a
// reservation conflict is all that is left, and returns the unit
// attentions and other conditions seen on the way (NOT READY while the
// gateway catches up included).
func (h *prHost) unitAttentions() []string {
	h.t.Helper()
	var seen []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		r, err := h.do(make([]byte, 6), nil, 0)
		o := outcome(r, err)
		if o == "good" || o == "conflict" {
			return seen
		}
		if len(seen) == 0 || seen[len(seen)-1] != o {
			seen = append(seen, o)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("TEST UNIT READY through %s still not good: %v", h.portal, seen)
		}
		if !strings.HasPrefix(o, "sense 6/") {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

const (
	hostX = "iqn.2024-01.io.test:host-x"
	hostY = "iqn.2024-01.io.test:host-y"
)

// reserveSetup: X registers and reserves (WRITE EXCLUSIVE) through gw-a
// and writes pattern 1; Y registers through gw-b.
func reserveSetup(t *testing.T, c *testCluster) (x, y *prHost) {
	t.Helper()
	a, b := c.gws[0], c.gws[1]
	x = &prHost{t: t, c: c, name: hostX, portal: a.portal}
	y = &prHost{t: t, c: c, name: hostY, portal: b.portal}
	t.Cleanup(x.close)
	t.Cleanup(y.close)
	// The first commands of a new session report its unit attentions.
	x.unitAttentions()
	y.unitAttentions()
	x.must("REGISTER", x.prout(saRegister, 0, keyX, 0), "good")
	x.must("RESERVE", x.prout(saReserve, keyX, 0, typeWriteExcl), "good")
	y.must("REGISTER", y.prout(saRegister, 0, keyY, 0), "good")
	y.must("WRITE while X holds the reservation", y.write(0), "conflict")
	x.must("WRITE", x.write(1), "good")
	return x, y
}

// checkContent fails unless the block read through h is pattern want.
func checkContent(t *testing.T, h *prHost, want int, forbidden ...int) {
	t.Helper()
	var got []byte
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var o string
		if got, o = h.read(); o == "good" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read through %s: %s", h.portal, o)
		}
	}
	for _, n := range forbidden {
		if bytes.Equal(got, prBlock(n)) {
			t.Fatalf("pattern %d, written by the preempted host, is in the image", n)
		}
	}
	if !bytes.Equal(got, prBlock(want)) {
		t.Fatalf("the block holds %q, want pattern %d", got[:24], want)
	}
}

// Without a partition: X's WRITE on gw-a is stuck in the OSDs (paused)
// when Y PREEMPT AND ABORTs through gw-b. gw-a aborts it, or cannot and is
// fenced, before the PREEMPT completes: the write never reaches the image,
// and X sees REGISTRATIONS PREEMPTED (2Ah/05h) through gw-a.
func TestPreemptAndAbortReachesTheOtherGateway(t *testing.T) {
	c := newCluster(t, 2)
	a := c.gws[0]
	x, y := reserveSetup(t, c)
	oldClient := servingClient(t, a)

	if _, err := ceph("osd", "pause"); err != nil {
		t.Fatal(err)
	}
	paused := true
	unpause := func() {
		if paused {
			if out, err := ceph("osd", "unpause"); err != nil {
				t.Errorf("osd unpause: %v %s", err, out)
			}
			paused = false
		}
	}
	defer unpause()

	// X's write goes out and stays in flight: it reaches librbd, whose
	// OSD requests wait for the unpause. The client learns of the pause
	// with its next OSD map: until then writes still complete.
	content := 1
	var slow *iscsitest.Cmd
	for n := 100; ; n++ {
		slow = &iscsitest.Cmd{CDB: rw10(0x2a, prLBA), Data: prBlock(n), EDTL: 512}
		if x.in == nil {
			t.Fatal("X's session through gw-a dropped")
		}
		if err := x.in.Submit(slow); err != nil {
			t.Fatal(err)
		}
		if !x.pollFor(slow, 3*time.Second) {
			break
		}
		if slow.Result.Status != 0 {
			t.Fatalf("write %d through gw-a: status %#x", n, slow.Result.Status)
		}
		content = n
		if n > 120 {
			t.Fatal("writes through gw-a still complete with the OSDs paused")
		}
	}

	start := time.Now()
	res := y.prout(saPreemptAndAbort, keyY, keyX, typeWriteExcl)
	took := time.Since(start)
	y.must("PREEMPT AND ABORT", res, "good")
	// The write cannot end while the OSDs are paused (librbd cannot
	// cancel it), so gw-a could not confirm: it must be fenced by now.
	fenced := blocklisted(oldClient)
	t.Logf("PREEMPT AND ABORT through gw-b: good after %v; gw-a's client %s fenced: %v",
		took.Round(time.Millisecond), oldClient, fenced)
	if !fenced && !x.pollFor(slow, 2*time.Second) {
		t.Fatal("PREEMPT AND ABORT completed while X's write is still in flight on gw-a, which is not fenced")
	}
	unpause()

	// The slow write ends without GOOD: TASK ABORTED, an error, no
	// response at all (TAS=0), or a dropped connection.
	end := "no response"
	if x.pollFor(slow, 20*time.Second) {
		end = fmt.Sprintf("status %#x", slow.Result.Status)
		if slow.Result.Status == 0 {
			t.Fatal("X's write, preempted and aborted, returned GOOD")
		}
	}
	t.Logf("X's in-flight write through gw-a: %s", end)
	var stuck []int // the write in flight, and any that went missing
	for n := content + 1; n <= 120; n++ {
		stuck = append(stuck, n)
	}
	checkContent(t, y, content, stuck...)

	// X's next commands through gw-a, in the same session (the unit
	// attention is the I_T nexus's), report the preemption, and its
	// writes conflict.
	uas := x.unitAttentions()
	t.Logf("X through gw-a after the preemption: %v", uas)
	if !slices.Contains(uas, "sense 6/2a/05") {
		t.Fatalf("X saw %v through gw-a, no REGISTRATIONS PREEMPTED (2Ah/05h)", uas)
	}
	x.must("WRITE after the preemption", x.write(3), "conflict")
	y.must("WRITE by the new holder", y.write(4), "good")
	checkContent(t, y, 4)
}

// blocklisted reports whether addr is in the OSD blocklist.
func blocklisted(addr string) bool {
	out, err := ceph("osd", "blocklist", "ls")
	return err == nil && strings.Contains(out, addr)
}

// With gw-a cut off from etcd (it owns nothing, so no takeover fences
// it), Y's PREEMPT AND ABORT through gw-b cannot be confirmed by gw-a: it
// fails, or returns GOOD only once gw-a's client is in the blocklist. X's
// next WRITE through gw-a, which still believes X holds the reservation,
// does not reach the image.
func TestPreemptWhileReservationHolderPartitioned(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.gws[0], c.gws[1]
	disk := "rbd/" + c.images[0]

	proxy := c.throughProxy(t, a)
	if c.owner() != b.name {
		c.admin("owner", "move", disk, b.name)
	}
	x, y := reserveSetup(t, c)
	oldClient := servingClient(t, a)

	proxy.Partition()
	cut := time.Now()
	res := y.prout(saPreemptAndAbort, keyY, keyX, typeWriteExcl)
	took := time.Since(cut)
	fenced := blocklisted(oldClient)
	t.Logf("PREEMPT AND ABORT through gw-b with gw-a partitioned: %s after %v; gw-a's client %s fenced: %v",
		res, took.Round(time.Millisecond), oldClient, fenced)
	if res == "good" && !fenced {
		t.Fatalf("PREEMPT AND ABORT returned GOOD while gw-a, which did not confirm it, is not fenced")
	}
	if res != "good" && !strings.HasPrefix(res, "sense") {
		t.Fatalf("PREEMPT AND ABORT: %s", res)
	}

	// X's next write through gw-a gets no GOOD and does not land.
	got := x.write(5)
	t.Logf("X's WRITE through the partitioned gw-a: %s", got)
	if got == "good" {
		t.Fatal("X's WRITE through the partitioned gw-a returned GOOD after the preemption")
	}
	checkContent(t, y, 1, 5)
	y.must("WRITE by the new holder", y.write(6), "good")
	checkContent(t, y, 6)

	// After the heal gw-a catches up: X's writes conflict there too.
	proxy.Heal()
	x.close()
	uas := x.unitAttentions()
	t.Logf("X through gw-a after the heal: %v", uas)
	x.must("WRITE through gw-a after the heal", x.write(7), "conflict")
	checkContent(t, y, 6)
}
