//go:build pacific

package rbd

import (
	"errors"
	"syscall"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

func TestOpErrorMapping(t *testing.T) {
	tests := []struct {
		ret  int
		ctx  errContext
		want error
	}{
		{-int(syscall.ETIMEDOUT), ctxIO, rbdbackend.ErrTimeout},
		{-int(syscall.ESHUTDOWN), ctxIO, rbdbackend.ErrLockLost},
		{-int(syscall.ESHUTDOWN), ctxAdmin, rbdbackend.ErrLockLost},
		{-int(syscall.EROFS), ctxIO, rbdbackend.ErrLockLost},
		{-int(syscall.EROFS), ctxAdmin, ErrBusy},
		{-int(syscall.EILSEQ), ctxIO, rbdbackend.ErrMiscompare},
		{-int(syscall.EOPNOTSUPP), ctxIO, rbdbackend.ErrUnsupported},
		{-int(syscall.ENOENT), ctxAdmin, ErrNotFound},
		{-int(syscall.EEXIST), ctxAdmin, ErrExists},
		{-int(syscall.EBUSY), ctxAdmin, ErrBusy},
		{-int(syscall.ENOTEMPTY), ctxAdmin, ErrHasSnapshots},
		{-int(syscall.EINVAL), ctxAdmin, ErrInvalid},
	}
	for _, tc := range tests {
		err := opError("op", "rbd/img", tc.ret, tc.ctx)
		if !errors.Is(err, tc.want) {
			t.Errorf("opError(%d, ctx %d) = %v, want %v", tc.ret, tc.ctx, err, tc.want)
		}
		if !errors.Is(err, syscall.Errno(-tc.ret)) {
			t.Errorf("opError(%d) = %v does not match its errno", tc.ret, err)
		}
	}
	if err := opError("op", "", 0, ctxIO); err != nil {
		t.Errorf("opError(0) = %v, want nil", err)
	}
	err := opError("write", "rbd/img", -int(syscall.ENOSPC), ctxIO)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Kind != nil || oe.Errno != syscall.ENOSPC {
		t.Errorf("ENOSPC: %#v, want an OpError without a sentinel", err)
	}
}

func TestMismatchOffset(t *testing.T) {
	const obj = 4 << 20
	tests := []struct {
		name     string
		reported uint64
		off, n   int64
		want     int64
	}{
		{"at object start", obj + 10, obj, 512, 10},
		{"inside an object (pacific adds the object start)", obj + 57, obj + 4196, 200, 57},
		{"first object", 511, 4096, 512, 511},
		{"outside the request", 5 * obj, obj, 512, 0},
		{"before the object", 0, obj + 512, 512, 0},
	}
	for _, tc := range tests {
		if got := mismatchOffset(tc.reported, tc.off, tc.n, obj); got != tc.want {
			t.Errorf("%s: mismatchOffset = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestNativeCompareAndWriteRange(t *testing.T) {
	tests := []struct {
		off, n int64
		want   bool
	}{
		{0, 512, true},
		{4096, 512, true},
		{100, 200, true},
		{511, 1, true},
		{511, 2, false},
		{256, 512, false},
		{0, 513, false},
		{0, 4096, false},
	}
	for _, tc := range tests {
		if got := nativeCompareAndWrite(tc.off, tc.n); got != tc.want {
			t.Errorf("nativeCompareAndWrite(%d, %d) = %v, want %v", tc.off, tc.n, got, tc.want)
		}
	}
}

func TestCheckClientAddr(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0/3942014515", true},
		{"10.1.2.3:6800/12345", true},
		{"[::1]:0/77", true},
		{"127.0.0.1", false},
		{"127.0.0.1:0/0", false},
		{"127.0.0.1/5", false},
		{"127.0.0.1:0/abc", false},
		{"", false},
	}
	for _, tc := range tests {
		err := checkClientAddr(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("checkClientAddr(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("checkClientAddr(%q) = %v, want ErrInvalid", tc.addr, err)
		}
	}
}

func TestFeatureMask(t *testing.T) {
	mask, err := FeatureMask(DefaultFeatures)
	if err != nil || mask != 61 {
		t.Fatalf("FeatureMask(default) = %d, %v; want 61 (pacific's rbd_default_features)", mask, err)
	}
	if got := FeatureNames(mask); len(got) != len(DefaultFeatures) {
		t.Errorf("FeatureNames(61) = %v", got)
	}
	if _, err := FeatureMask([]string{"layering", "turbo"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown feature: %v, want ErrInvalid", err)
	}
}
