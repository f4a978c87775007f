package login

import "fmt"

// Status is the status of a login response: class<<8 | detail
// (RFC 7143 §11.13.5).
type Status uint16

// Login response status codes.
const (
	StatusSuccess                Status = 0x0000
	StatusTargetMovedTemp        Status = 0x0101
	StatusTargetMovedPerm        Status = 0x0102
	StatusInitiatorError         Status = 0x0200
	StatusAuthFailed             Status = 0x0201
	StatusForbidden              Status = 0x0202
	StatusNotFound               Status = 0x0203
	StatusTargetRemoved          Status = 0x0204
	StatusUnsupportedVersion     Status = 0x0205
	StatusTooManyConnections     Status = 0x0206
	StatusMissingParameter       Status = 0x0207
	StatusCantIncludeInSession   Status = 0x0208
	StatusSessionTypeUnsupported Status = 0x0209
	StatusSessionDoesNotExist    Status = 0x020a
	StatusInvalidDuringLogin     Status = 0x020b
	StatusTargetError            Status = 0x0300
	StatusServiceUnavailable     Status = 0x0301
	StatusOutOfResources         Status = 0x0302
)

var statusNames = map[Status]string{
	StatusSuccess:                "success",
	StatusTargetMovedTemp:        "target moved temporarily",
	StatusTargetMovedPerm:        "target moved permanently",
	StatusInitiatorError:         "initiator error",
	StatusAuthFailed:             "authentication failure",
	StatusForbidden:              "authorization failure",
	StatusNotFound:               "target not found",
	StatusTargetRemoved:          "target removed",
	StatusUnsupportedVersion:     "unsupported version",
	StatusTooManyConnections:     "too many connections",
	StatusMissingParameter:       "missing parameter",
	StatusCantIncludeInSession:   "can't include in session",
	StatusSessionTypeUnsupported: "session type not supported",
	StatusSessionDoesNotExist:    "session does not exist",
	StatusInvalidDuringLogin:     "invalid during login",
	StatusTargetError:            "target error",
	StatusServiceUnavailable:     "service unavailable",
	StatusOutOfResources:         "out of resources",
}

// Class is the Status-Class byte of the login response.
func (s Status) Class() uint8 { return uint8(s >> 8) }

// Detail is the Status-Detail byte of the login response.
func (s Status) Detail() uint8 { return uint8(s) }

func (s Status) String() string {
	if name, ok := statusNames[s]; ok {
		return fmt.Sprintf("%s (0x%04x)", name, uint16(s))
	}
	return fmt.Sprintf("status 0x%04x", uint16(s))
}

// loginError is why a conversation ended: the status sent to the initiator
// and a reason for the log. Reasons never carry secrets or CHAP values.
type loginError struct {
	status Status
	reason string
}

func (e *loginError) Error() string { return "login refused: " + e.status.String() + ": " + e.reason }

func refuse(status Status, format string, args ...any) *loginError {
	return &loginError{status: status, reason: fmt.Sprintf(format, args...)}
}
