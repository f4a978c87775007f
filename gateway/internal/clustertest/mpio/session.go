package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
)

// common are the flags every command takes.
type common struct {
	target    string
	initiator string
	portals   portalList
	lun       uint64
	isid      uint
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.target, "target", "", "target IQN")
	fs.StringVar(&c.initiator, "initiator", "iqn.2024-01.io.rbdgw:mpio", "initiator name")
	fs.Var(&c.portals, "portal", "portal ip:port (repeatable; in failover order)")
	fs.Uint64Var(&c.lun, "lun", 0, "LUN")
	fs.UintVar(&c.isid, "isid", 1, "low bits of the ISID (distinct I_T nexuses of one initiator)")
}

func (c *common) check() error {
	if c.target == "" || len(c.portals) == 0 {
		return errors.New("-target and -portal are required")
	}
	return nil
}

type portalList []string

func (l *portalList) String() string     { return strings.Join(*l, ",") }
func (l *portalList) Set(v string) error { *l = append(*l, v); return nil }

// session is a logged-in normal session to one portal.
type session struct {
	in     *iscsitest.Initiator
	portal string
	lun    uint64
}

// dial logs in to the target through portal and clears the unit
// attentions a new I_T nexus starts with.
func dial(c *common, portal string) (*session, error) {
	in, err := iscsitest.Dial(portal)
	if err != nil {
		return nil, err
	}
	in.ISID[5] = byte(c.isid)
	in.ISID[4] = byte(c.isid >> 8)
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: c.initiator, TargetName: c.target}); err != nil {
		in.Close()
		return nil, err
	}
	s := &session{in: in, portal: portal, lun: c.lun}
	for i := 0; ; i++ {
		r, err := s.do(cdb6(0x00), nil, 0)
		if err != nil {
			s.close()
			return nil, err
		}
		if r.Status == 0 {
			return s, nil
		}
		if i == 20 {
			s.close()
			return nil, fmt.Errorf("TEST UNIT READY through %s: %s", portal, describe(r))
		}
		if k, _, _ := senseOf(r); k != senseUnitAttention {
			time.Sleep(100 * time.Millisecond) // not ready yet (transition)
		}
	}
}

func (s *session) close() { s.in.Close() }

// do runs one command; data is the Data-Out, readLen the Data-In length.
func (s *session) do(cdb []byte, data []byte, readLen int) (*iscsitest.Result, error) {
	c := &iscsitest.Cmd{LUN: s.lun, CDB: cdb, Data: data}
	if readLen > 0 {
		c.Read, c.EDTL = true, uint32(readLen)
	} else {
		c.EDTL = uint32(len(data))
	}
	return s.in.Do(c)
}

const (
	senseNotReady       = 0x2
	senseUnitAttention  = 0x6
	statusGood          = 0x00
	statusCheck         = 0x02
	statusResvConflict  = 0x18
	statusBusy          = 0x08
	ascqTransition      = 0x040a
	ascqAccessChanged   = 0x2a06
	opWrite10, opRead10 = 0x2a, 0x28
)

// senseOf returns the sense key and ASC/ASCQ of a CHECK CONDITION.
func senseOf(r *iscsitest.Result) (key byte, asc uint16, ok bool) {
	s := r.Sense
	switch {
	case len(s) >= 14 && s[0]&0x7f >= 0x70 && s[0]&0x7f <= 0x71:
		return s[2] & 0x0f, uint16(s[12])<<8 | uint16(s[13]), true
	case len(s) >= 4 && s[0]&0x7f >= 0x72:
		return s[1] & 0x0f, uint16(s[2])<<8 | uint16(s[3]), true
	}
	return 0, 0, false
}

func describe(r *iscsitest.Result) string {
	if k, asc, ok := senseOf(r); ok {
		return fmt.Sprintf("status %#02x sense %#x/%04x", r.Status, k, asc)
	}
	return fmt.Sprintf("status %#02x", r.Status)
}

func cdb6(op byte) []byte { return []byte{op, 0, 0, 0, 0, 0} }

func rw10(op byte, lba uint32, blocks uint16) []byte {
	c := make([]byte, 10)
	c[0] = op
	binary.BigEndian.PutUint32(c[2:6], lba)
	binary.BigEndian.PutUint16(c[7:9], blocks)
	return c
}
