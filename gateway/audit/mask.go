package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// Mask replaces the value of a secret.
const Mask = "***"

// Withheld replaces a body MaskSecrets cannot read as JSON: its secrets
// cannot be found, so none of it is kept.
const Withheld = "(withheld: not JSON)"

// secretKeys are the JSON keys whose values MaskSecrets hides, compared
// without regard to case (encoding/json matches field names that way too,
// so {"Secret": ...} sets a field named secret).
var secretKeys = []string{"secret", "password", "mutual_secret", "mutual_password", "chap_secret", "token"}

// maxDepth bounds the nesting MaskSecrets follows; deeper documents are
// withheld rather than walked.
const maxDepth = 256

func isSecretKey(k string) bool {
	for _, s := range secretKeys {
		if strings.EqualFold(k, s) {
			return true
		}
	}
	return false
}

// MaskSecrets returns the JSON document b, compacted, with the value of
// every object key named secret, password, mutual_secret, mutual_password,
// chap_secret or token (any case, at any depth, inside objects and arrays)
// replaced by "***"; a null value stays null. Keys keep their order. Input
// that is empty or only white space comes back unchanged; input that is
// not one valid JSON value comes back as the JSON string Withheld.
func MaskSecrets(b []byte) []byte {
	if len(bytes.TrimSpace(b)) == 0 {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(b))
	if err := maskValue(dec, &out, 0); err != nil {
		return withheld()
	}
	if _, err := dec.Token(); err != io.EOF {
		return withheld() // trailing data
	}
	return out.Bytes()
}

func withheld() []byte {
	b, _ := json.Marshal(Withheld)
	return b
}

var errTooDeep = errors.New("too deeply nested")

// maskValue copies one JSON value from dec to out, masking secrets.
func maskValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return writeScalar(out, tok)
	}
	if depth >= maxDepth {
		return errTooDeep
	}
	switch d {
	case '{':
		out.WriteByte('{')
		for i := 0; dec.More(); i++ {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, ok := kt.(string)
			if !ok {
				return errors.New("object key is not a string")
			}
			if i > 0 {
				out.WriteByte(',')
			}
			if err := writeScalar(out, k); err != nil {
				return err
			}
			out.WriteByte(':')
			if !isSecretKey(k) {
				if err := maskValue(dec, out, depth+1); err != nil {
					return err
				}
				continue
			}
			null, err := skipValue(dec, depth+1)
			if err != nil {
				return err
			}
			if null {
				out.WriteString("null")
			} else {
				writeScalar(out, Mask)
			}
		}
		_, err := dec.Token() // '}'
		out.WriteByte('}')
		return err
	case '[':
		out.WriteByte('[')
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if err := maskValue(dec, out, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		out.WriteByte(']')
		return err
	}
	return errors.New("unexpected delimiter")
}

// skipValue reads one value without copying it and reports whether it was
// null.
func skipValue(dec *json.Decoder, depth int) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok == nil, nil
	}
	if depth >= maxDepth {
		return false, errTooDeep
	}
	for dec.More() {
		if d == '{' {
			if _, err := dec.Token(); err != nil { // key
				return false, err
			}
		}
		if _, err := skipValue(dec, depth+1); err != nil {
			return false, err
		}
	}
	_, err = dec.Token()
	return false, err
}

// writeScalar writes a string, number, bool or null token as JSON,
// without HTML escaping.
func writeScalar(out *bytes.Buffer, tok json.Token) error {
	switch v := tok.(type) {
	case nil:
		out.WriteString("null")
	case bool:
		if v {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case json.Number:
		out.WriteString(v.String())
	case string:
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		out.Truncate(out.Len() - 1) // Encode's newline
	default:
		return errors.New("unexpected JSON token")
	}
	return nil
}
