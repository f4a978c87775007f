package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a byte count that JSON carries as a number of bytes or as a
// string with a binary unit, the way storage admins write sizes: "90G",
// "512M", "1.5T", "4096" (K, M, G, T, P; an optional "iB" or "B"; powers
// of 1024, as rbd and ceph-iscsi read them).
type Size int64

// units are the suffixes ParseSize accepts, as powers of 1024.
var units = map[string]int{"": 0, "B": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}

// ParseSize reads a size such as "90G" or "1048576". The error says what
// is wrong and what is accepted.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("size is empty")
	}
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	if unit != "B" {
		unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	}
	exp, ok := units[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("size %q: expected a number with an optional unit K, M, G, T or P (powers of 1024), e.g. 90G", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("size %q: %q is not a non-negative number", s, num)
	}
	v := f * math.Pow(1024, float64(exp))
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	return int64(v), nil
}

// FormatSize writes n with the largest binary unit that divides it exactly
// ("90G", "1536M", "4K").
func FormatSize(n int64) string {
	names := []string{"", "K", "M", "G", "T", "P"}
	i := 0
	for i < len(names)-1 && n != 0 && n%1024 == 0 {
		n /= 1024
		i++
	}
	return strconv.FormatInt(n, 10) + names[i]
}

// UnmarshalJSON accepts a number of bytes or a string with a unit.
func (s *Size) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		n, err := ParseSize(str)
		if err != nil {
			return err
		}
		*s = Size(n)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("size must be a whole number of bytes or a string such as \"90G\"")
	}
	if n < 0 {
		return fmt.Errorf("size %d is negative", n)
	}
	*s = Size(n)
	return nil
}
