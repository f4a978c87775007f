package main

import (
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
)

// groupState names an asymmetric access state.
var groupState = map[byte]string{0x0: "AO", 0x1: "ANO", 0x2: "standby", 0x3: "unavailable", 0xe: "offline", 0xf: "transitioning"}

// identity prints what the logical unit reports through one portal: its
// device identification (VPD 0x83) and its target port groups (REPORT
// TARGET PORT GROUPS).
func identity(args []string) error {
	fs := flag.NewFlagSet("identity", flag.ContinueOnError)
	var c common
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	s, err := dial(&c, c.portals[0])
	if err != nil {
		return err
	}
	defer s.close()
	out := map[string]any{"portal": s.portal}

	r, err := s.do([]byte{0x12, 0x01, 0x83, 0x10, 0x00, 0x00}, nil, 4096) // INQUIRY VPD 0x83
	if err != nil {
		return err
	}
	if r.Status != statusGood || len(r.Data) < 4 {
		return fmt.Errorf("INQUIRY VPD 0x83: %s", describe(r))
	}
	page := r.Data[4:min(len(r.Data), 4+int(binary.BigEndian.Uint16(r.Data[2:4])))]
	for len(page) >= 4 {
		n := int(page[3])
		if len(page) < 4+n {
			break
		}
		d, assoc, typ := page[4:4+n], (page[1]>>4)&3, page[1]&0xf
		switch {
		case assoc == 0 && typ == 3:
			out["naa"] = hex.EncodeToString(d)
		case assoc == 1 && typ == 4 && n >= 4:
			out["relative_port"] = binary.BigEndian.Uint16(d[2:4])
		case assoc == 1 && typ == 5 && n >= 4:
			out["port_group"] = binary.BigEndian.Uint16(d[2:4])
		}
		page = page[4+n:]
	}

	rtpg := []byte{0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0} // 4096 bytes
	r, err = s.do(rtpg, nil, 4096)
	if err != nil {
		return err
	}
	if r.Status != statusGood || len(r.Data) < 4 {
		return fmt.Errorf("REPORT TARGET PORT GROUPS: %s", describe(r))
	}
	var groups []map[string]any
	body := r.Data[4:min(len(r.Data), 4+int(binary.BigEndian.Uint32(r.Data[0:4])))]
	for len(body) >= 8 {
		ports := int(body[7])
		if len(body) < 8+4*ports {
			break
		}
		g := map[string]any{
			"id":    binary.BigEndian.Uint16(body[2:4]),
			"state": groupState[body[0]&0xf],
			"pref":  body[0]&0x80 != 0,
		}
		var rel []uint16
		for p := range ports {
			rel = append(rel, binary.BigEndian.Uint16(body[8+4*p+2:8+4*p+4]))
		}
		g["ports"] = rel
		groups = append(groups, g)
		body = body[8+4*ports:]
	}
	out["groups"] = groups
	emit(out)
	return nil
}
