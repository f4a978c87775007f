package iscsi

import (
	"math/bits"
	"sync"
)

// Write buffers hold a command's Data-Out (immediate, unsolicited and
// solicited) so the SCSI layer writes from one contiguous slice. They are
// pooled in power-of-two classes from 4 KiB to maxWriteBuffer.
const (
	minBufShift    = 12
	maxBufShift    = 25
	maxWriteBuffer = 1 << maxBufShift // largest Data-Out a single command may carry
)

var writeBufPools [maxBufShift - minBufShift + 1]sync.Pool

func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufShift
}

// getWriteBuf returns a buffer of length n (n <= maxWriteBuffer). Its
// contents are stale: callers fill every byte before use.
func getWriteBuf(n int) *[]byte {
	c := bufClass(n)
	if v, ok := writeBufPools[c].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<(c+minBufShift))
	return &b
}

// putWriteBuf gives a buffer from getWriteBuf back. nil is ignored.
func putWriteBuf(b *[]byte) {
	if b == nil {
		return
	}
	c := bufClass(cap(*b))
	if cap(*b) != 1<<(c+minBufShift) {
		return
	}
	writeBufPools[c].Put(b)
}
