package iscsi

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

func BenchmarkQD1Read(b *testing.B)  { benchIO(b, 4096, false, 1) }
func BenchmarkQD4Read(b *testing.B)  { benchIO(b, 4096, false, 4) }
func BenchmarkQD1Write(b *testing.B) { benchIO(b, 4096, true, 1) }

func BenchmarkPing(b *testing.B) {
	e := newEnv(b)
	in := e.login()
	b.ResetTimer()
	for range b.N {
		if _, err := in.Ping(nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExecuteDirect(b *testing.B) {
	e := newEnv(b)
	n := &scsi.Nexus{InitiatorName: testInitiator, TargetName: testIQN, TPGT: 1}
	e.device.NexusLogin(n)
	e.device.Execute(context.Background(), &scsi.Command{Nexus: n, CDB: cdbTUR()})
	b.ResetTimer()
	b.SetParallelism(8)
	var tag atomic.Uint32
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := e.device.Execute(context.Background(), &scsi.Command{Nexus: n, CDB: cdbRead10(0, 8), Read: true, ExpectedLength: 4096, Attr: scsi.TaskSimple, Tag: tag.Add(1)})
			if r.Status != 0 {
				b.Fatal(r.Status)
			}
		}
	})
}
