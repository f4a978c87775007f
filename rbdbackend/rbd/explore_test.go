//go:build pacific

package rbd

import (
	"testing"
)

func TestExplore(t *testing.T) {
	c := connect(t)
	t.Logf("addr %q", c.ClientAddr())
	img := newImage(t, c, 64<<20, CreateOptions{})
	mustWrite(t, img, randomBytes(1, 4096), 0)
	o, err := img.LockOwners()
	t.Logf("owners %q %v", o, err)
	cur := mustRead(t, img, 0, 512)
	bad := append([]byte(nil), cur...)
	bad[100] ^= 1
	m, err := img.CompareAndWrite(0, bad, make([]byte, 512))
	t.Logf("caw mismatch %d err %v", m, err)
	m, err = img.CompareAndWrite(8192+512*3, make([]byte, 512), randomBytes(2, 512))
	t.Logf("caw zero %d err %v", m, err)
	info, err := c.Info(testPool, img.name)
	t.Logf("info %+v %v", info, err)
}
