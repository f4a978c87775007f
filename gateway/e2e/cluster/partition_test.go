package cluster

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/clustertest/tcpproxy"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
)

// partitionGrace is how much longer than the lease TTL (5 s here) the
// test gives the gateways to stop a partitioned owner: the takeover's
// grace (2 s), fencing, and a shared, slow test machine.
const partitionGrace = 25 * time.Second

// probeLBA is the block every write of the partition test goes to.
const probeLBA = 4096

// host is one initiator session to one portal, as a test drives it: one
// command at a time, every command bounded in time, a new login after a
// lost connection.
type host struct {
	t      *testing.T
	c      *testCluster
	portal string
	in     *iscsitest.Initiator
}

// do runs one command; err is a transport failure (the session is then
// dropped and the next command logs in again).
func (h *host) do(cdb, data []byte, readLen int) (*iscsitest.Result, error) {
	if h.in == nil {
		in, err := iscsitest.Dial(h.portal)
		if err != nil {
			return nil, err
		}
		_ = in.Conn.SetDeadline(time.Now().Add(30 * time.Second))
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.io.test:partition", TargetName: h.c.iqn}); err != nil {
			in.Close()
			return nil, err
		}
		h.in = in
	}
	_ = h.in.Conn.SetDeadline(time.Now().Add(30 * time.Second))
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

func (h *host) close() {
	if h.in != nil {
		h.in.Close()
		h.in = nil
	}
}

// servingClient is the Ceph client the daemon last said it serves
// through: the first one, or the last replacement after a fence.
func servingClient(t *testing.T, g *gateway) string {
	t.Helper()
	b, err := os.ReadFile(g.log)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?:msg="rbd: connected".* addr|msg="serving through a new Ceph client".* ceph_client)=(\S+)`).FindAllStringSubmatch(string(b), -1)
	if len(m) == 0 {
		t.Fatalf("%s logged no Ceph client address", g.name)
	}
	return m[len(m)-1][1]
}

// block is the 512-byte pattern number n.
func block(n int) []byte {
	b := bytes.Repeat([]byte(fmt.Sprintf("partition-%08d|", n)), 32)[:512]
	return b
}

func rw10(op byte, lba uint32) []byte {
	c := make([]byte, 10)
	c[0] = op
	binary.BigEndian.PutUint32(c[2:6], lba)
	binary.BigEndian.PutUint16(c[7:9], 1)
	return c
}

// write writes pattern n to the probe block; true when it returned GOOD.
func (h *host) write(n int) (bool, string) {
	r, err := h.do(rw10(0x2a, probeLBA), block(n), 0)
	switch {
	case err != nil:
		return false, err.Error()
	case r.Status != 0:
		return false, fmt.Sprintf("status %#x sense % x", r.Status, r.Sense[:min(len(r.Sense), 18)])
	}
	return true, "good"
}

// read returns the probe block, retrying unit attentions and not ready.
func (h *host) read() []byte {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := h.do(rw10(0x28, probeLBA), nil, 512)
		if err == nil && r.Status == 0 {
			return r.Data
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("read through %s: %v %+v", h.portal, err, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A proxy sits between gw-a and etcd. gw-a owns the disk and a host writes
// through it; then gw-a is cut off from etcd only. Within the lease TTL
// plus a grace period no command through gw-a returns GOOD; gw-b takes the
// disk over and blocklists gw-a's client; no write issued through gw-a
// after that is in the image. Once the partition heals gw-a registers
// again, serves through a new client, and writes through it land.
func TestPartitionedOwnerIsFenced(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.gws[0], c.gws[1]
	disk := "rbd/" + c.images[0]

	// gw-a reaches etcd through the proxy from now on.
	proxy := c.throughProxy(t, a)
	if c.owner() != a.name {
		c.admin("owner", "move", disk, a.name)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if s := groupStates(c.identity(b)); s[tpgOf(a)] == "AO+pref" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not own the disk: %v", a.name, groupStates(c.identity(b)))
		}
	}
	oldClient := a.cephClient()

	ha := &host{t: t, c: c, portal: a.portal}
	hb := &host{t: t, c: c, portal: b.portal}
	defer ha.close()
	defer hb.close()
	n := 0
	for ok := false; !ok; {
		n++
		var why string
		if ok, why = ha.write(n); !ok && n > 50 {
			t.Fatalf("writes through %s before the partition: %s", a.name, why)
		}
	}

	// Partition gw-a from etcd. Writes through it may succeed until it is
	// fenced (those are in the image before gw-b writes anything); then
	// nothing through it returns GOOD.
	proxy.Partition()
	cut := time.Now()
	good := []int{n} // patterns that may be the block's content
	var firstRefusal time.Duration
	var refusal string
	for {
		n++
		ok, why := ha.write(n)
		if ok {
			good = append(good, n)
		} else {
			// A write that failed may or may not have reached the OSDs
			// before the fence: it can be the content too.
			good = append(good, n)
			firstRefusal, refusal = time.Since(cut), why
			break
		}
		if time.Since(cut) > 5*time.Second+partitionGrace {
			t.Fatalf("writes through %s still GOOD %v after the partition", a.name, time.Since(cut))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("first write through %s without GOOD %v after the partition: %s", a.name, firstRefusal.Round(time.Millisecond), refusal)

	// gw-b takes over and blocklists gw-a's client.
	for deadline := time.Now().Add(partitionGrace); c.owner() != b.name; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("owner %q %v after the partition, want %s", c.owner(), time.Since(cut), b.name)
		}
	}
	for deadline := time.Now().Add(partitionGrace); ; time.Sleep(500 * time.Millisecond) {
		out, err := ceph("osd", "blocklist", "ls")
		if err == nil && strings.Contains(out, oldClient) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's client %s is not in the OSD blocklist: %v\n%s", a.name, oldClient, err, out)
		}
	}
	t.Logf("%s owns the disk and %s's client %s is blocklisted %v after the partition",
		b.name, a.name, oldClient, time.Since(cut).Round(time.Millisecond))

	// Writes issued through gw-a from now on get no GOOD and do not land.
	after := map[string]int{}
	lastBefore := n
	for range 10 {
		n++
		if ok, why := ha.write(n); ok {
			t.Fatalf("write %d through the fenced %s returned GOOD", n, a.name)
		} else {
			after[why]++
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("10 writes through %s after the takeover: %v", a.name, after)
	got := hb.read()
	content := -1
	for _, k := range good {
		if bytes.Equal(got, block(k)) {
			content = k
		}
	}
	for k := lastBefore + 1; k <= n; k++ {
		if bytes.Equal(got, block(k)) {
			t.Fatalf("write %d, issued through %s after it was fenced, is in the image", k, a.name)
		}
	}
	if content < 0 {
		t.Fatalf("the block read through %s is none of the patterns written: %q", b.name, got[:32])
	}
	// gw-b serves writes.
	n++
	if ok, why := hb.write(n); !ok {
		t.Fatalf("write through %s after the takeover: %s", b.name, why)
	}
	if !bytes.Equal(hb.read(), block(n)) {
		t.Fatal("the write through gw-b is not in the image")
	}

	// The partition heals: gw-a registers again, re-reads the cluster,
	// replaces its client and serves again (non-optimized).
	proxy.Heal()
	healed := time.Now()
	ha.close()
	for {
		n++
		if ok, _ := ha.write(n); ok {
			break
		}
		if time.Since(healed) > 60*time.Second {
			t.Fatalf("%s does not serve again after the partition healed:\n%s", a.name, a.logTail(30))
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("%s serves again %v after the partition healed", a.name, time.Since(healed).Round(time.Millisecond))
	if servingClient(t, a) == oldClient {
		t.Fatalf("%s serves through its fenced client", a.name)
	}
	if !bytes.Equal(hb.read(), block(n)) {
		t.Fatalf("the write through the returned %s is not in the image", a.name)
	}
	if o := c.owner(); o != b.name {
		t.Fatalf("owner after the partition healed: %s, want %s", o, b.name)
	}
}

// throughProxy restarts g with its etcd connection through a TCP proxy the
// test controls, and waits for the cluster to be ready again.
func (c *testCluster) throughProxy(t *testing.T, g *gateway) *tcpproxy.Proxy {
	t.Helper()
	proxy, err := tcpproxy.New(etcdEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	g.stop()
	i := slices.Index(g.args, "-etcd")
	g.args[i+1] = proxy.Addr()
	g.start()
	c.waitReady()
	return proxy
}
