package e2e

import (
	"strings"
	"testing"
	"time"
)

const (
	hostIQN  = "iqn.2024-01.io.example:host1"
	otherIQN = "iqn.2024-01.io.example:intruder"
)

const authConfig = `
portals: ["127.0.0.1:%PORT%"]
discovery_auth: {user: disco, secret: "discosecret1"}
disks:
  - {name: d0, backend: memory, size: 67108864}
targets:
  - iqn: iqn.2024-01.io.rbdgw:chap
    luns: [{id: 0, disk: d0}]
    acls:
      - initiator: "iqn.2024-01.io.example:host1"
        chap: {user: host1, secret: "host1secret1"}
      - initiator: "iqn.2024-01.io.example:mutual"
        chap: {user: host2, secret: "host2secret1", mutual_user: tgt, mutual_secret: "tgtsecret123"}
`

func TestCHAP(t *testing.T) {
	needTools(t, "iscsi-inq", "iscsi-ls")
	g := startGateway(t, authConfig)
	lun := func(cred, query string) string {
		return "iscsi://" + cred + g.portal() + "/iqn.2024-01.io.rbdgw:chap/0" + query
	}
	tests := []struct {
		name      string
		initiator string
		url       string
		ok        bool
		wantOut   string // for failures: what the initiator reports
	}{
		{"right secret", hostIQN, lun("host1%host1secret1@", ""), true, ""},
		{"wrong secret", hostIQN, lun("host1%wrongsecret1@", ""), false, "Authentication failure"},
		{"wrong user", hostIQN, lun("nobody%host1secret1@", ""), false, "Authentication failure"},
		{"no credentials", hostIQN, lun("", ""), false, "Authentication failure"},
		{"not in the ACL", otherIQN, lun("host1%host1secret1@", ""), false, "Authorization failure"},
		{"mutual", "iqn.2024-01.io.example:mutual", lun("host2%host2secret1@", "?target_user=tgt&target_password=tgtsecret123"), true, ""},
		{"mutual, target gives wrong answer", "iqn.2024-01.io.example:mutual", lun("host2%host2secret1@", "?target_user=tgt&target_password=notthesecret"), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, 20*time.Second, "iscsi-inq", "-i", tc.initiator, tc.url)
			if tc.ok {
				if err != nil || !strings.Contains(out, "DIRECT_ACCESS") {
					t.Fatalf("login failed: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("login succeeded, want refusal:\n%s", out)
			}
			if tc.wantOut != "" && !strings.Contains(out, tc.wantOut) {
				t.Fatalf("initiator output does not mention %q:\n%s", tc.wantOut, out)
			}
		})
	}
	if strings.Contains(g.log.String(), "host1secret1") || strings.Contains(g.log.String(), "tgtsecret123") {
		t.Fatal("a CHAP secret appears in the daemon log")
	}
}

func TestDiscoveryCHAP(t *testing.T) {
	needTools(t, "iscsi-ls")
	g := startGateway(t, authConfig)
	out, err := run(t, 20*time.Second, "iscsi-ls", "-i", hostIQN, "iscsi://disco%discosecret1@"+g.portal())
	if err != nil || !strings.Contains(out, "iqn.2024-01.io.rbdgw:chap") {
		t.Fatalf("discovery with the right secret: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Portal:"+g.portal()+",1") {
		t.Fatalf("discovery does not list the portal:\n%s", out)
	}
	out, err = run(t, 20*time.Second, "iscsi-ls", "-i", hostIQN, "iscsi://disco%wrongsecret1@"+g.portal())
	if err == nil || strings.Contains(out, "iqn.2024-01.io.rbdgw:chap") {
		t.Fatalf("discovery with a wrong secret succeeded:\n%s", out)
	}
	out, err = run(t, 20*time.Second, "iscsi-ls", "-i", otherIQN, "iscsi://disco%discosecret1@"+g.portal())
	if err != nil {
		t.Fatalf("discovery from an initiator outside every ACL failed: %v\n%s", err, out)
	}
	if strings.Contains(out, "iqn.2024-01.io.rbdgw:chap") {
		t.Fatalf("discovery shows a target the initiator may not access:\n%s", out)
	}
}

// TestDigests logs in with CRC32C header digests (libiscsi offers
// "None,CRC32C"; a target with prefer_digests chooses CRC32C) and moves data
// through them with qemu-img.
func TestDigests(t *testing.T) {
	needTools(t, "iscsi-inq", "qemu-img")
	g := startGateway(t, authConfig+"tuning: {prefer_digests: true}\n")
	url := "iscsi://host1%host1secret1@" + g.portal() + "/iqn.2024-01.io.rbdgw:chap/0?header_digest=crc32c"
	if out, err := run(t, 20*time.Second, "iscsi-inq", "-i", hostIQN, url); err != nil || !strings.Contains(out, "DIRECT_ACCESS") {
		t.Fatalf("login with digests: %v\n%s", err, out)
	}
	if out, err := run(t, 60*time.Second, "qemu-img", "bench", "-w", "-c", "2000", "-s", "65536", "-d", "8",
		"--image-opts", "driver=iscsi,transport=tcp,portal="+g.portal()+",target=iqn.2024-01.io.rbdgw:chap,lun=0,"+
			"initiator-name="+hostIQN+",user=host1,password=host1secret1,header-digest=crc32c"); err != nil {
		t.Fatalf("I/O with digests: %v\n%s", err, out)
	}
	if !g.log.has("header_digest=true") {
		t.Fatalf("no session negotiated CRC32C digests:\n%s", g.log)
	}
}
