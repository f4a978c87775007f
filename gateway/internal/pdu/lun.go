package pdu

// SAM-5 LUN address methods (top two bits of the first byte).
const (
	lunPeripheral   = 0x0
	lunFlat         = 0x1
	lunExtendedFlat = 0xd2 // extended address method, length 1 (3-byte LUN), flat space
	maxFlatLUN      = 1<<14 - 1
	maxExtFlatLUN   = 1<<24 - 1
)

// EncodeLUN turns a LUN number into the raw 8-byte LUN field: peripheral
// device addressing for 0-255, flat space addressing for 256-16383 (what
// Linux and most initiators use) and extended flat space above that. Numbers
// above 2^24-1 are not representable and are truncated to 24 bits.
func EncodeLUN(lun uint64) uint64 {
	switch {
	case lun <= 0xff:
		return lun << 48
	case lun <= maxFlatLUN:
		return (lunFlat<<14 | lun) << 48
	default:
		return (lunExtendedFlat<<24 | lun&maxExtFlatLUN) << 32
	}
}

// DecodeLUN turns a raw LUN field into a LUN number. It accepts single-level
// peripheral (bus 0), flat space and extended flat space addressing; any other
// method, or a second level, reports false.
func DecodeLUN(raw uint64) (uint64, bool) {
	first := byte(raw >> 56)
	switch first >> 6 {
	case lunPeripheral:
		if first != 0 || raw&(1<<48-1) != 0 {
			return 0, false
		}
		return raw >> 48 & 0xff, true
	case lunFlat:
		if raw&(1<<48-1) != 0 {
			return 0, false
		}
		return raw >> 48 & maxFlatLUN, true
	}
	if first == lunExtendedFlat && raw&(1<<32-1) == 0 {
		return raw >> 32 & maxExtFlatLUN, true
	}
	return 0, false
}
