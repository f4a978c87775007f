package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
)

// MaxBodyBytes bounds every request body: the largest document the API
// takes is a configuration import, far below it.
const MaxBodyBytes = 1 << 20

// readBody reads the request body within MaxBodyBytes.
func readBody(c *gin.Context) ([]byte, error) {
	r := http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	b, err := io.ReadAll(r)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, newError(http.StatusRequestEntityTooLarge, model.CodeTooLarge,
			"request body is larger than %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return nil, newError(http.StatusBadRequest, model.CodeMalformed, "cannot read the request body: %v", err)
	}
	c.Set(ctxBody, b)
	return b, nil
}

// bindJSON decodes the body into v strictly: one JSON object, no unknown
// fields, no trailing data. Errors name the field and what was expected.
func bindJSON(c *gin.Context, v any) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}

// decodeStrict is bindJSON's decoder, pure for fuzzing.
func decodeStrict(b []byte, v any) error {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return newError(http.StatusBadRequest, model.CodeMalformed, "request body is empty; expected a JSON object")
	}
	// encoding/json takes null as "leave v alone": a PUT of null would
	// store an empty document, dropping every setting of the entity.
	if string(trimmed) == "null" {
		return newError(http.StatusBadRequest, model.CodeMalformed, "expected a JSON object, got null")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newError(http.StatusBadRequest, model.CodeMalformed, "%s", describeJSONError(b, err))
	}
	if dec.More() {
		return newError(http.StatusBadRequest, model.CodeMalformed, "request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return newError(http.StatusBadRequest, model.CodeMalformed, "request body has data after the JSON object")
	}
	return nil
}

// describeJSONError turns encoding/json's errors into messages that name
// the field and the position.
func describeJSONError(b []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(b, syn.Offset-1)
		return fmt.Sprintf("malformed JSON at line %d, column %d: %v", line, col, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return fmt.Sprintf("expected %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("field %q: expected %s, got %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends before the object does"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "invalid request body: " + strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64":
		return "an integer"
	case "uint", "uint8", "uint16", "uint32", "uint64":
		return "a non-negative integer in range"
	case "float32", "float64":
		return "a number"
	}
	return goKind
}

func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
