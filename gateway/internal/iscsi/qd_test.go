package iscsi

import "testing"

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
