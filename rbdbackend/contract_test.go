package rbdbackend_test

import (
	"path/filepath"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
	"github.com/rbdgw/rbdgw/rbdbackend/imagetest"
)

// implementations lists every Image in this package, for the contract and
// the benchmarks.
var implementations = []struct {
	name string
	open imagetest.Factory
}{
	{"memory", openMemory},
	{"file", openFile(rbdbackend.FileOptions{})},
	{"file-direct", openFile(rbdbackend.FileOptions{Direct: true})},
	{"fault-over-memory", func(t testing.TB, size int64) rbdbackend.Image {
		return rbdbackend.NewFaultImage(openMemory(t, size))
	}},
}

func openMemory(t testing.TB, size int64) rbdbackend.Image {
	img := rbdbackend.NewMemoryImage(size)
	t.Cleanup(func() { img.Close() })
	return img
}

func openFile(opts rbdbackend.FileOptions) imagetest.Factory {
	return func(t testing.TB, size int64) rbdbackend.Image {
		opts := opts
		opts.Size = size
		img, err := rbdbackend.OpenFileImage(filepath.Join(t.TempDir(), "image"), opts)
		if err != nil {
			t.Fatalf("OpenFileImage: %v", err)
		}
		t.Cleanup(func() { img.Close() })
		return img
	}
}

func TestImageContract(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) { imagetest.Run(t, impl.open) })
	}
}
