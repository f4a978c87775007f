package scsi

import (
	"context"
	"testing"
)

// The per-command cost of the device server on the I/O path, over a
// memory image: what the transport pays for each READ or WRITE besides
// moving the data.

func BenchmarkExecuteRead4K(b *testing.B) {
	benchExecute(b, false, nil)
}

// BenchmarkExecuteRead4KDataIn lends a Data-In buffer, as the transport
// can, so that the read allocates no data buffer.
func BenchmarkExecuteRead4KDataIn(b *testing.B) {
	benchExecute(b, false, make([]byte, 0, 4096))
}

func BenchmarkExecuteWrite4K(b *testing.B) {
	benchExecute(b, true, nil)
}

func benchExecute(b *testing.B, write bool, dataIn []byte) {
	e := newEnv(b)
	const blocks = 4096 / testBlockSize
	data := fill(blocks*testBlockSize, 0x5a)
	e.good(cdb10(opWrite10, 0, blocks), data)
	cmd := &Command{Nexus: e.n, CDB: cdb10(opRead10, 0, blocks), Attr: TaskSimple,
		ExpectedLength: uint32(len(data)), Read: true}
	if write {
		cmd.CDB, cmd.Read, cmd.Write, cmd.DataOut = cdb10(opWrite10, 0, blocks), false, true, data
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		cmd.Tag++
		cmd.DataIn = dataIn
		r := e.tgt.Execute(ctx, cmd)
		if r.Status != StatusGood || (!write && len(r.Data) != len(data)) {
			b.Fatalf("status %#x, %d bytes", r.Status, len(r.Data))
		}
	}
}
