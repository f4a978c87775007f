package pdu

import (
	"math/bits"
	"sync"
)

// Data segments are pooled in power-of-two size classes from 512 bytes up to
// 16 MiB, the largest padded data segment (2^24-1 rounded up to 4).
const (
	minClassShift = 9
	maxClassShift = 24
)

var bufferPools [maxClassShift - minClassShift + 1]sync.Pool

// classFor returns the size class index holding n bytes (n <= 1<<maxClassShift).
func classFor(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// getBuffer returns a pooled buffer of length n. The pointer is what goes
// back to the pool, so Put does not allocate.
func getBuffer(n int) *[]byte {
	c := classFor(n)
	if v := bufferPools[c].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<(c+minClassShift))
	return &b
}

func putBuffer(bp *[]byte) {
	c := classFor(cap(*bp))
	if cap(*bp) != 1<<(c+minClassShift) {
		return // not one of ours
	}
	bufferPools[c].Put(bp)
}
