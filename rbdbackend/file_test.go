package rbdbackend

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOpenFileImage(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		opts     FileOptions
		wantSize int64
		wantErr  error // nil: success; errAny: any error
	}{
		{"missing file without size", filepath.Join(dir, "missing"), FileOptions{}, 0, fs.ErrNotExist},
		{"creates with size", filepath.Join(dir, "new"), FileOptions{Size: 1 << 30}, 1 << 30, nil},
		{"existing at its length", existing, FileOptions{}, 8192, nil},
		{"smaller size keeps the file", existing, FileOptions{Size: 4096}, 8192, nil},
		{"read-only existing", existing, FileOptions{ReadOnly: true}, 8192, nil},
		{"read-only cannot extend", existing, FileOptions{ReadOnly: true, Size: 1 << 20}, 0, ErrReadOnly},
		{"negative size", existing, FileOptions{Size: -1}, 0, errAny},
		{"directory", dir, FileOptions{ReadOnly: true}, 0, errAny},
		{"direct needs aligned size", filepath.Join(dir, "odd"), FileOptions{Size: 4096 + 100, Direct: true}, 0, errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := OpenFileImage(tc.path, tc.opts)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("OpenFileImage: %v", err)
			case tc.wantErr == errAny && err == nil, tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("OpenFileImage: err %v, want %v", err, tc.wantErr)
			case err != nil:
				return
			}
			defer img.Close()
			if got := img.Size(); got != tc.wantSize {
				t.Fatalf("Size() = %d, want %d", got, tc.wantSize)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestFileImageIsSparseAndPunchesHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "image")
	img, err := OpenFileImage(path, FileOptions{Size: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if got := allocatedBytes(t, path); got != 0 {
		t.Fatalf("fresh 1 GiB image has %d bytes allocated", got)
	}
	mustWrite(t, img, randomBytes(1, 4<<20), 1<<20)
	if err := img.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := allocatedBytes(t, path); got < 4<<20 {
		t.Fatalf("after a 4 MiB write %d bytes are allocated", got)
	}
	if err := img.Discard(1<<20, 4<<20); err != nil {
		t.Fatal(err)
	}
	if got := allocatedBytes(t, path); got != 0 {
		t.Fatalf("after discarding everything %d bytes are still allocated", got)
	}
}

func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestFileImagePersists(t *testing.T) {
	for _, direct := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "image")
		img, err := OpenFileImage(path, FileOptions{Size: 1 << 20, Direct: direct})
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(5, 3000)
		mustWrite(t, img, data, 777)
		if err := img.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := img.Close(); err != nil {
			t.Fatal(err)
		}
		img, err = OpenFileImage(path, FileOptions{ReadOnly: true, Direct: direct})
		if err != nil {
			t.Fatal(err)
		}
		checkBytes(t, img, 777, data)
		img.Close()
	}
}

func TestFileImageReadOnlyRefusesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "image")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := OpenFileImage(path, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	block := make([]byte, 512)
	writes := map[string]func() error{
		"WriteAt":         func() error { _, err := img.WriteAt(block, 0); return err },
		"Discard":         func() error { return img.Discard(0, 512) },
		"WriteSame":       func() error { return img.WriteSame(0, 512, block) },
		"CompareAndWrite": func() error { _, err := img.CompareAndWrite(0, block, block); return err },
		"Resize":          func() error { return img.Resize(2 << 20) },
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: err %v, want ErrReadOnly", name, err)
		}
	}
	checkBytes(t, img, 0, block)
	if err := img.Flush(); err != nil {
		t.Errorf("Flush on a read-only image: %v", err)
	}
}

func TestFileImageDirectAlignment(t *testing.T) {
	img, err := OpenFileImage(filepath.Join(t.TempDir(), "image"), FileOptions{Size: 1 << 20, Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.align < 512 || img.align&(img.align-1) != 0 {
		t.Fatalf("direct I/O alignment %d", img.align)
	}
	t.Logf("direct I/O alignment: offsets %d, buffers %d", img.align, img.memAlign)
	if err := img.Resize(1<<20 + img.align/2); err == nil {
		t.Fatal("Resize to an unaligned size succeeded under O_DIRECT")
	}
	aligned := alignedBuffer(4096, 4096)
	tests := []struct {
		name string
		p    []byte
		off  int64
		want bool
	}{
		{"aligned", aligned, 4096, false},
		{"unaligned offset", aligned, 100, true},
		{"unaligned length", aligned[:1000], 0, true},
		{"unaligned buffer", alignedBuffer(8192, 4096)[1 : 1+4096], 0, img.memAlign > 1},
	}
	for _, tc := range tests {
		if got := img.needsBounce(tc.p, tc.off); got != tc.want {
			t.Errorf("%s: needsBounce = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFileImageExactExtents(t *testing.T) {
	for _, direct := range []bool{false, true} {
		img, err := OpenFileImage(filepath.Join(t.TempDir(), "image"), FileOptions{Size: 4*mib + 4096, Direct: direct})
		if err != nil {
			t.Fatal(err)
		}
		checkExactExtents(t, img)
		img.Close()
	}
}

func TestFileImageCloseAndShrink(t *testing.T) {
	img, err := OpenFileImage(filepath.Join(t.TempDir(), "image"), FileOptions{Size: 8192})
	if err != nil {
		t.Fatal(err)
	}
	if err := img.Resize(4096); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("shrink: %v, want ErrUnsupported", err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	for name, call := range map[string]func() error{
		"Discard":   func() error { return img.Discard(0, 512) },
		"WriteSame": func() error { return img.WriteSame(0, 512, make([]byte, 512)) },
		"Extent":    func() error { _, _, err := img.Extent(0, 1); return err },
		"Resize":    func() error { return img.Resize(1 << 20) },
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}
