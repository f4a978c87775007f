package tree

import (
	"errors"
	"reflect"
	"testing"
)

const (
	tIQN = "iqn.2003-01.com.redhat.iscsi-gw:iscsi-igw"
	hIQN = "iqn.1994-05.com.redhat:rh7-client"
)

func mustResolve(t *testing.T, cwd Path, p string) Path {
	t.Helper()
	q, err := Resolve(cwd, p)
	if err != nil {
		t.Fatalf("Resolve(%s, %q): %v", cwd, p, err)
	}
	return q
}

func TestResolve(t *testing.T) {
	target := mustResolve(t, Root, "/iscsi-targets/"+tIQN)
	hosts := mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/hosts")
	tdisks := mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/disks")
	tests := []struct {
		cwd      Path
		in, want string
		kind     Kind
	}{
		{Root, "/", "/", KRoot},
		{Root, "", "/", KRoot},
		{Root, "disks", "/disks", KDisks},
		{Root, "/disks/rbd/disk_1", "/disks/rbd/disk_1", KDisk},
		{Root, "disks/rbd/", "/disks/rbd", KDiskPool},
		{Root, "/cluster/pools/rbd", "/cluster/pools/rbd", KPool},
		{Root, "iscsi-targets", "/iscsi-targets", KTargets},
		{Root, "/iscsi-target/" + tIQN + "/hosts", "/iscsi-targets/" + tIQN + "/hosts", KHosts},
		{Root, "/iscsi-targets/IQN.2003-01.COM.REDHAT.ISCSI-GW:ISCSI-IGW", "/iscsi-targets/" + tIQN, KTarget},
		{target, "gateways", "/iscsi-targets/" + tIQN + "/gateways", KTGateways},
		{target, "gateways/ceph-gw-1", "/iscsi-targets/" + tIQN + "/gateways/ceph-gw-1", KTGateway},
		{target, "..", "/iscsi-targets", KTargets},
		{target, "../..", "/", KRoot},
		{target, "../../../..", "/", KRoot},
		{target, "./disks/./rbd/disk_1", "/iscsi-targets/" + tIQN + "/disks/rbd/disk_1", KTDisk},
		{tdisks, "rbd/disk_1", "/iscsi-targets/" + tIQN + "/disks/rbd/disk_1", KTDisk},
		{tdisks, "rbd/disk_1/..", "/iscsi-targets/" + tIQN + "/disks", KTDisks},
		{hosts, hIQN, "/iscsi-targets/" + tIQN + "/hosts/" + hIQN, KHost},
		{hosts, hIQN + "/lun3", "/iscsi-targets/" + tIQN + "/hosts/" + hIQN + "/lun3", KHostLUN},
		{hosts, "../host-groups/dbs", "/iscsi-targets/" + tIQN + "/host-groups/dbs", KGroup},
		{hosts, "../host-groups/dbs/" + hIQN, "/iscsi-targets/" + tIQN + "/host-groups/dbs/" + hIQN, KGroupHost},
		{hosts, "../host-groups/dbs/rbd/disk_1", "/iscsi-targets/" + tIQN + "/host-groups/dbs/rbd/disk_1", KGroupDisk},
		{hosts, "/disks", "/disks", KDisks},
	}
	for _, tc := range tests {
		got, err := Resolve(tc.cwd, tc.in)
		if err != nil {
			t.Errorf("Resolve(%s, %q): %v", tc.cwd, tc.in, err)
			continue
		}
		if got.String() != tc.want || got.Kind != tc.kind {
			t.Errorf("Resolve(%s, %q) = %s (%s), want %s (%s)", tc.cwd, tc.in, got, got.Kind, tc.want, tc.kind)
		}
	}
	p := mustResolve(t, hosts, "../host-groups/dbs/rbd/disk_1")
	if p.Target != tIQN || p.Name != "dbs" || p.Pool != "rbd" || p.Image != "disk_1" || p.Disk() != "rbd/disk_1" {
		t.Errorf("fields of %s: %+v", p, p)
	}
	h := mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/hosts/"+hIQN+"/lun12")
	if h.Name != hIQN || h.LUN != 12 || h.Parent().Kind != KHost {
		t.Errorf("fields of %s: %+v", h, h)
	}
}

func TestResolveErrors(t *testing.T) {
	tdisks := mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/disks")
	tests := []struct {
		cwd Path
		in  string
	}{
		{Root, "/nope"},
		{Root, "/cluster/nope"},
		{Root, "/iscsi-targets/not-an-iqn"},
		{Root, "/iscsi-targets/iqn.2003-13.com.x:t"},
		{Root, "/disks/rbd/disk_1/more"},
		{Root, "/disks/r%d"},
		{tdisks, "rbd"},
		{tdisks, "rbd/"},
		{Root, "/iscsi-targets/" + tIQN + "/users"},
		{Root, "/iscsi-targets/" + tIQN + "/hosts/" + hIQN + "/disk0"},
		{Root, "/iscsi-targets/" + tIQN + "/hosts/" + hIQN + "/lun256"},
	}
	for _, tc := range tests {
		_, err := Resolve(tc.cwd, tc.in)
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Errorf("Resolve(%s, %q) error = %v, want a PathError", tc.cwd, tc.in, err)
		}
		if ExitCode(err) != ExitUsage {
			t.Errorf("Resolve(%s, %q): exit code %d, want %d", tc.cwd, tc.in, ExitCode(err), ExitUsage)
		}
	}
}

func TestPathChildParent(t *testing.T) {
	tdisks := mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/disks")
	d, err := tdisks.Child("rbd/disk_1")
	if err != nil || d.Kind != KTDisk {
		t.Fatalf("Child: %v %v", d, err)
	}
	if !reflect.DeepEqual(d.Parent(), tdisks) {
		t.Errorf("Parent of %s = %+v, want %+v", d, d.Parent(), tdisks)
	}
}
