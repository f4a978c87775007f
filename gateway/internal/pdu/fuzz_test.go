package pdu

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
)

func seedStreams(f *testing.F) {
	for _, digests := range []bool{false, true} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.SetHeaderDigest(digests)
		w.SetDataDigest(digests)
		pdus := []*PDU{
			(&SCSICommand{Final: true, Write: true, ITT: 1, CDB: make([]byte, 32), BidiReadLength: 4,
				Data: []byte("imm")}).Encode(),
			(&LoginReq{Transit: true, NSG: 1, Data: []byte("InitiatorName=iqn.x\x00")}).Encode(),
			(&SCSIResponse{Status: 2, Sense: []byte{0x70, 0, 5}}).Encode(),
			(&LogoutReq{Reason: 1}).Encode(),
		}
		if err := w.WriteBatch(pdus); err != nil {
			f.Fatal(err)
		}
		flags := byte(0)
		if digests {
			flags = 3
		}
		f.Add(append([]byte{flags}, buf.Bytes()...))
	}
}

// FuzzReader feeds arbitrary bytes to Reader.Read and every parser. Nothing
// may panic; every PDU read must be self-consistent; every successful parse
// must survive encode and re-parse unchanged.
func FuzzReader(f *testing.F) {
	seedStreams(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		r := NewReader(bytes.NewReader(in[1:]))
		r.SetHeaderDigest(in[0]&1 != 0)
		r.SetDataDigest(in[0]&2 != 0)
		r.SetMaxDataSegmentLength(int(in[0]>>2) * 1024)
		for {
			p, err := r.Read()
			var dde *DataDigestError
			if errors.As(err, &dde) {
				p, err = dde.PDU, nil
			}
			if err != nil {
				var pe *ProtocolError
				if err != io.EOF && err != io.ErrUnexpectedEOF && err != ErrHeaderDigest && !errors.As(err, &pe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if len(p.AHS) != p.BHS.TotalAHSLength() || len(p.Data) != p.BHS.DataSegmentLength() {
				t.Fatalf("PDU lengths disagree with its BHS")
			}
			checkParsers(t, p)
			p.Release()
		}
	})
}

func checkParsers(t *testing.T, p *PDU) {
	t.Helper()
	for name, parse := range allParsers() {
		v, err := parse(p)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: error %T is not *ProtocolError", name, err)
			}
			continue
		}
		enc, ok := v.(interface{ Encode() *PDU })
		if !ok {
			t.Fatalf("%s: %T has no Encode", name, v)
		}
		again, err := parse(enc.Encode())
		if err != nil {
			t.Fatalf("%s: re-parse of own encoding: %v", name, err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(again)) {
			t.Fatalf("%s: re-parse differs\n got %+v\nwant %+v", name, again, v)
		}
	}
}

// normalize treats nil and empty byte slices alike for comparisons.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return v
	}
	cp := reflect.New(rv.Elem().Type())
	cp.Elem().Set(rv.Elem())
	s := cp.Elem()
	for i := range s.NumField() {
		if fv := s.Field(i); fv.Kind() == reflect.Slice && fv.Len() == 0 {
			fv.Set(reflect.Zero(fv.Type()))
		}
	}
	return cp.Interface()
}

// encodable lists a fresh value of every PDU type with Encode and its parser.
var encodable = []struct {
	new   func() any
	parse func(*PDU) (any, error)
}{
	{func() any { return &SCSICommand{} }, anyParser(ParseSCSICommand)},
	{func() any { return &DataOut{} }, anyParser(ParseDataOut)},
	{func() any { return &NOPOut{} }, anyParser(ParseNOPOut)},
	{func() any { return &TaskMgmtReq{} }, anyParser(ParseTaskMgmtReq)},
	{func() any { return &LoginReq{} }, anyParser(ParseLoginReq)},
	{func() any { return &TextReq{} }, anyParser(ParseTextReq)},
	{func() any { return &LogoutReq{} }, anyParser(ParseLogoutReq)},
	{func() any { return &SNACKReq{} }, anyParser(ParseSNACKReq)},
	{func() any { return &SCSIResponse{} }, anyParser(ParseSCSIResponse)},
	{func() any { return &DataIn{} }, anyParser(ParseDataIn)},
	{func() any { return &R2T{} }, anyParser(ParseR2T)},
	{func() any { return &NOPIn{} }, anyParser(ParseNOPIn)},
	{func() any { return &TaskMgmtResp{} }, anyParser(ParseTaskMgmtResp)},
	{func() any { return &LoginResp{} }, anyParser(ParseLoginResp)},
	{func() any { return &TextResp{} }, anyParser(ParseTextResp)},
	{func() any { return &LogoutResp{} }, anyParser(ParseLogoutResp)},
	{func() any { return &AsyncMsg{} }, anyParser(ParseAsyncMsg)},
	{func() any { return &Reject{} }, anyParser(ParseReject)},
}

// fill sets every field of the struct behind v from rng, byte slices from data.
func fill(v any, rng *rand.Rand, data []byte) {
	s := reflect.ValueOf(v).Elem()
	for i := range s.NumField() {
		f := s.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(rng.IntN(2) == 1)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(rng.Uint64())
		case reflect.Array:
			for j := range f.Len() {
				f.Index(j).SetUint(uint64(rng.UintN(256)))
			}
		case reflect.Slice:
			f.SetBytes(data)
		}
	}
}

// fitFields trims random values to what each wire field can hold.
func fitFields(v any, rng *rand.Rand) {
	switch m := v.(type) {
	case *SCSICommand:
		m.Attr &= 0x07
		cdb := make([]byte, 16+rng.IntN(200))
		for i := range cdb {
			cdb[i] = byte(rng.UintN(256))
		}
		m.CDB = cdb
	case *TaskMgmtReq:
		m.Function &= 0x7f
	case *LoginReq:
		m.CSG &= 3
		m.NSG &= 3
	case *LoginResp:
		m.CSG &= 3
		m.NSG &= 3
	case *LogoutReq:
		m.Reason &= 0x7f
	case *SNACKReq:
		m.Type &= 0x0f
	case *SCSIResponse:
		if len(m.Sense) > 0xffff {
			m.Sense = m.Sense[:0xffff]
		}
	}
}

// FuzzRoundTrip encodes every PDU type from fuzzed field values, sends it
// through Writer and Reader with the chosen digests, parses it back and
// expects the same value.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint64(2), []byte("data"), false, false)
	f.Add(uint64(3), uint64(4), []byte{}, true, true)
	f.Add(uint64(5), uint64(6), make([]byte, 5000), true, false)
	f.Fuzz(func(t *testing.T, seed1, seed2 uint64, data []byte, hd, dd bool) {
		rng := rand.New(rand.NewPCG(seed1, seed2))
		var stream bytes.Buffer
		w := NewWriter(&stream)
		w.SetHeaderDigest(hd)
		w.SetDataDigest(dd)
		var want []any
		var pdus []*PDU
		for _, e := range encodable {
			v := e.new()
			fill(v, rng, data)
			fitFields(v, rng)
			want = append(want, v)
			pdus = append(pdus, v.(interface{ Encode() *PDU }).Encode())
		}
		if err := w.WriteBatch(pdus); err != nil {
			t.Fatal(err)
		}
		r := NewReader(&stream)
		r.SetHeaderDigest(hd)
		r.SetDataDigest(dd)
		r.SetMaxDataSegmentLength(MaxDataSegmentLength)
		for i, e := range encodable {
			p, err := r.Read()
			if err != nil {
				t.Fatalf("%T: %v", want[i], err)
			}
			got, err := e.parse(p)
			if err != nil {
				t.Fatalf("%T: %v", want[i], err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(want[i])) {
				t.Fatalf("round trip differs\n got %+v\nwant %+v", got, want[i])
			}
			p.Release()
		}
		if _, err := r.Read(); err != io.EOF {
			t.Fatalf("trailing bytes: %v", err)
		}
	})
}
