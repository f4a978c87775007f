//go:build pacific

package rbd

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ceph/go-ceph/rados"
)

// BlocklistEntry is one fenced client address.
type BlocklistEntry struct {
	Addr  string `json:"addr"`
	Until string `json:"until"`
}

// checkClientAddr accepts only one client's address, "ip:port/nonce" with
// a non-zero nonce. A bare IP (stored as ip:0/0) would fence every client
// on that host, this gateway's own included.
func checkClientAddr(addr string) error {
	slash := strings.LastIndexByte(addr, '/')
	if slash < 0 || !strings.Contains(addr[:slash], ":") {
		return fmt.Errorf("rbd: %q is not a client address (ip:port/nonce): %w", addr, ErrInvalid)
	}
	nonce, err := strconv.ParseUint(addr[slash+1:], 10, 64)
	if err != nil || nonce == 0 {
		return fmt.Errorf("rbd: %q names no single client (nonce must be non-zero): %w", addr, ErrInvalid)
	}
	return nil
}

// Blocklist fences the client at addr for expiry: the OSDs reject all its
// operations, so it can no longer write any image.
func (c *Cluster) Blocklist(addr string, expiry time.Duration) error {
	if err := checkClientAddr(addr); err != nil {
		return err
	}
	// The mon insists on a JSON float for expire ("60" is rejected).
	cmd := fmt.Sprintf(`{"prefix":"osd blocklist","blocklistop":"add","addr":%s,"expire":%s}`,
		jsonString(addr), strconv.FormatFloat(expiry.Seconds(), 'f', 1, 64))
	if err := c.monCommand("blocklist "+addr, cmd, nil); err != nil {
		return err
	}
	// From now on this client's operations carry the OSD map epoch with the
	// entry, so an OSD applies the fence before it runs any of them.
	return c.withConn(func(conn *rados.Conn, _ uint64) error {
		return cephError("wait for osd map", "", conn.WaitForLatestOSDMap(), ctxAdmin)
	})
}

// Unblocklist lifts the fence of addr.
func (c *Cluster) Unblocklist(addr string) error {
	if err := checkClientAddr(addr); err != nil {
		return err
	}
	cmd := fmt.Sprintf(`{"prefix":"osd blocklist","blocklistop":"rm","addr":%s}`, jsonString(addr))
	return c.monCommand("unblocklist "+addr, cmd, nil)
}

// BlocklistEntries lists the fenced client addresses.
func (c *Cluster) BlocklistEntries() ([]BlocklistEntry, error) {
	var out []byte
	if err := c.monCommand("blocklist ls", `{"prefix":"osd blocklist ls","format":"json"}`, &out); err != nil {
		return nil, err
	}
	// The reply is two JSON arrays back to back: addresses, then ranges.
	var entries []BlocklistEntry
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var part []BlocklistEntry
		err := dec.Decode(&part)
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("rbd: blocklist ls: %w", err)
		}
		for _, e := range part {
			if e.Addr != "" {
				entries = append(entries, e)
			}
		}
	}
}

func (c *Cluster) monCommand(what, cmd string, out *[]byte) error {
	return c.withConn(func(conn *rados.Conn, _ uint64) error {
		buf, status, err := conn.MonCommand([]byte(cmd))
		if err != nil {
			if status != "" {
				what += " (" + status + ")"
			}
			return cephError(what, "", err, ctxAdmin)
		}
		if out != nil {
			*out = buf
		}
		return nil
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
