package login

import (
	"bytes"
	"errors"
	"fmt"
)

// Limits of the text format (RFC 7143 §6.1).
const (
	MaxKeyLength   = 63   // bytes in a key name
	MaxValueLength = 8192 // bytes in any value; most keys allow 255 (see maxSimpleValue)
	MaxPairs       = 1024 // key=value pairs in one request and in one conversation
)

// KV is one key=value pair. Keys keep their order on the wire.
type KV struct{ Key, Value string }

// Errors of the text codec. The wrapped message names the key, never the value.
var (
	ErrTextSyntax    = errors.New("login text: malformed key=value pair")
	ErrTextTooLong   = errors.New("login text: key or value too long")
	ErrTextTooMany   = errors.New("login text: too many key=value pairs")
	ErrTextDuplicate = errors.New("login text: key repeated")
)

// ParseText decodes "key=value\0" pairs. It tolerates a missing trailing NUL
// and NUL padding at the end; an empty pair elsewhere is malformed. A key
// repeated in one text is an error (RFC 7143 §6.2: a key is negotiated once).
func ParseText(data []byte) ([]KV, error) {
	data = bytes.TrimRight(data, "\x00")
	if len(data) == 0 {
		return nil, nil
	}
	var kvs []KV
	seen := make(map[string]struct{})
	for len(data) > 0 {
		record := data
		if i := bytes.IndexByte(data, 0); i >= 0 {
			record, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(kvs) == MaxPairs {
			return nil, ErrTextTooMany
		}
		kv, err := parsePair(record)
		if err != nil {
			return nil, err
		}
		if _, dup := seen[kv.Key]; dup {
			return nil, fmt.Errorf("%w: %q", ErrTextDuplicate, kv.Key)
		}
		seen[kv.Key] = struct{}{}
		kvs = append(kvs, kv)
	}
	return kvs, nil
}

func parsePair(record []byte) (KV, error) {
	eq := bytes.IndexByte(record, '=')
	if eq < 0 {
		return KV{}, fmt.Errorf("%w: no '=' in a pair of %d bytes", ErrTextSyntax, len(record))
	}
	key, value := record[:eq], record[eq+1:]
	if len(key) == 0 {
		return KV{}, fmt.Errorf("%w: empty key", ErrTextSyntax)
	}
	if len(key) > MaxKeyLength {
		return KV{}, fmt.Errorf("%w: key of %d bytes", ErrTextTooLong, len(key))
	}
	for _, b := range key {
		if !isKeyByte(b) {
			return KV{}, fmt.Errorf("%w: invalid byte 0x%02x in key", ErrTextSyntax, b)
		}
	}
	if len(value) > MaxValueLength {
		return KV{}, fmt.Errorf("%w: value of key %q has %d bytes", ErrTextTooLong, key, len(value))
	}
	return KV{Key: string(key), Value: string(value)}, nil
}

// isKeyByte reports whether b may appear in a key name: letters, digits and
// the punctuation of standard labels and X- / X# extension keys.
func isKeyByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '.', '-', '+', '@', '_', '#':
		return true
	}
	return false
}

// EncodeText encodes pairs as "key=value\0", in order.
func EncodeText(kvs []KV) []byte {
	n := 0
	for _, kv := range kvs {
		n += len(kv.Key) + len(kv.Value) + 2
	}
	out := make([]byte, 0, n)
	for _, kv := range kvs {
		out = append(out, kv.Key...)
		out = append(out, '=')
		out = append(out, kv.Value...)
		out = append(out, 0)
	}
	return out
}
