package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"strconv"
)

// reservation runs one persistent reservation operation, or a one-block
// read or write, through one portal and prints its outcome.
//
//	register KEY | unregister KEY | reserve KEY TYPE | release KEY TYPE |
//	clear KEY | read-keys | read-reservation | write LBA | read LBA
func reservation(args []string) error {
	fs := flag.NewFlagSet("pr", flag.ContinueOnError)
	var c common
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	op := fs.Args()
	if len(op) == 0 {
		return fmt.Errorf("pr: no operation")
	}
	num := func(i int) (uint64, error) {
		if len(op) <= i {
			return 0, fmt.Errorf("pr %s: missing argument", op[0])
		}
		return strconv.ParseUint(op[i], 0, 64)
	}
	s, err := dial(&c, c.portals[0])
	if err != nil {
		return err
	}
	defer s.close()

	var cdb, data []byte
	readLen := 0
	switch op[0] {
	case "register", "unregister", "reserve", "release", "clear":
		key, err := num(1)
		if err != nil {
			return err
		}
		var typ uint64
		if op[0] == "reserve" || op[0] == "release" {
			if typ, err = num(2); err != nil {
				return err
			}
		}
		sa := map[string]byte{"register": 0, "unregister": 0, "reserve": 1, "release": 2, "clear": 3}[op[0]]
		data = make([]byte, 24)
		switch op[0] {
		case "register":
			binary.BigEndian.PutUint64(data[8:16], key) // service action key; current key 0
		case "unregister":
			binary.BigEndian.PutUint64(data[0:8], key) // new key 0 removes the registration
		default:
			binary.BigEndian.PutUint64(data[0:8], key)
		}
		cdb = []byte{0x5f, sa, byte(typ), 0, 0, 0, 0, 0, 24, 0}
	case "read-keys", "read-reservation":
		sa := byte(0)
		if op[0] == "read-reservation" {
			sa = 1
		}
		cdb = []byte{0x5e, sa, 0, 0, 0, 0, 0, 0x10, 0, 0}
		readLen = 4096
	case "write", "read":
		lba, err := num(1)
		if err != nil {
			return err
		}
		if op[0] == "write" {
			cdb, data = rw10(opWrite10, uint32(lba), 1), make([]byte, 512)
		} else {
			cdb, readLen = rw10(opRead10, uint32(lba), 1), 512
		}
	default:
		return fmt.Errorf("pr: unknown operation %q", op[0])
	}
	r, err := s.do(cdb, data, readLen)
	if err != nil {
		return err
	}
	out := map[string]any{"op": op[0], "portal": s.portal}
	switch r.Status {
	case statusGood:
		out["status"] = "good"
	case statusResvConflict:
		out["status"] = "reservation-conflict"
	default:
		out["status"] = describe(r)
	}
	if r.Status == statusGood && len(r.Data) >= 8 {
		switch op[0] {
		case "read-keys":
			keys := []string{}
			n := int(binary.BigEndian.Uint32(r.Data[4:8]))
			for i := 8; i+8 <= 8+n && i+8 <= len(r.Data); i += 8 {
				keys = append(keys, fmt.Sprintf("%#x", binary.BigEndian.Uint64(r.Data[i:i+8])))
			}
			out["keys"] = keys
		case "read-reservation":
			if binary.BigEndian.Uint32(r.Data[4:8]) >= 16 && len(r.Data) >= 24 {
				out["reservation"] = map[string]any{
					"key":  fmt.Sprintf("%#x", binary.BigEndian.Uint64(r.Data[8:16])),
					"type": r.Data[21] & 0xf,
				}
			}
		}
	}
	emit(out)
	return nil
}
