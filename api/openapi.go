package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
)

// The OpenAPI 3 document is generated from the route table and the model
// types, so it describes exactly what is served; api/openapi.json is the
// committed copy, which a test keeps equal to it.

func (s *Server) openapi(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", s.OpenAPI())
}

// OpenAPI returns the document, indented.
func (s *Server) OpenAPI() []byte {
	b, err := json.MarshalIndent(buildOpenAPI(s.routes, s.opts.Version), "", "  ")
	if err != nil {
		panic(err) // only maps and strings: cannot fail
	}
	return append(b, '\n')
}

type schemas map[string]any

var (
	timeType = reflect.TypeFor[time.Time]()
	sizeType = reflect.TypeFor[model.Size]()
	anyType  = reflect.TypeFor[any]()
)

func buildOpenAPI(routes []route, version string) map[string]any {
	comps := schemas{}
	paths := map[string]map[string]any{}
	errRef := comps.ref(reflect.TypeFor[model.Error]())
	for _, r := range routes {
		p := APIPrefix + openapiPath(r.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{
			"summary":     r.summary,
			"operationId": operationID(r),
			"tags":        []string{r.tag},
		}
		var params []any
		for _, seg := range strings.Split(r.path, "/") {
			if strings.HasPrefix(seg, ":") {
				params = append(params, map[string]any{"name": seg[1:], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		for _, q := range r.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.desc, "schema": map[string]any{"type": q.typ}})
		}
		for _, h := range r.headers {
			params = append(params, map[string]any{"name": h.name, "in": "header", "description": h.desc, "schema": map[string]any{"type": h.typ}})
		}
		if r.writes() && r.role != 0 {
			params = append(params, map[string]any{"name": "If-Match", "in": "header", "description": "the ETag read; 412 when the entity changed since", "schema": map[string]any{"type": "string"}},
				map[string]any{"name": "If-None-Match", "in": "header", "description": "\"*\": create only; 412 when the entity exists", "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.req != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": comps.of(reflect.TypeOf(r.req))}}}
		}
		contentType := "application/json"
		if r.stream {
			contentType = "text/event-stream"
		}
		responses := map[string]any{
			strconv.Itoa(r.status): map[string]any{"description": http.StatusText(r.status),
				"content": map[string]any{contentType: map[string]any{"schema": comps.of(reflect.TypeOf(r.resp))}}},
		}
		for _, st := range r.errs {
			if st == http.StatusAccepted {
				responses["202"] = map[string]any{"description": "committed; wait=applied timed out before every gateway applied it",
					"content": map[string]any{"application/json": map[string]any{"schema": comps.of(reflect.TypeOf(r.resp))}}}
				continue
			}
			responses[strconv.Itoa(st)] = map[string]any{"description": http.StatusText(st),
				"content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
		}
		op["responses"] = responses
		if r.role != 0 {
			op["security"] = []any{map[string]any{"bearer": []string{}}}
			op["x-role"] = r.role.String()
		}
		paths[p][strings.ToLower(r.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "rbdgw REST API",
			"version":     "v1",
			"description": "Manages a cluster of Ceph RBD iSCSI gateways. Served by every gateway (build " + version + "); any gateway accepts any change.",
		},
		"servers": []any{map[string]any{"url": "/"}},
		"paths":   paths,
		"components": map[string]any{
			"schemas":         comps,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
}

func openapiPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func operationID(r route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.method))
	for _, seg := range strings.Split(r.path, "/") {
		seg = strings.TrimPrefix(seg, ":")
		for _, part := range strings.FieldsFunc(seg, func(c rune) bool { return c == '-' || c == '.' || c == '_' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// ref registers a named struct type and returns a reference to it.
func (c schemas) ref(t reflect.Type) map[string]any {
	name := t.Name()
	if _, done := c[name]; !done {
		c[name] = map[string]any{} // placeholder against recursion
		c[name] = c.object(t)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// of is the schema of a Go type.
func (c schemas) of(t reflect.Type) map[string]any {
	switch {
	case t == nil || t == anyType:
		return map[string]any{}
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == sizeType:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "example": "90G"},
		}, "description": "bytes, or a number with a binary unit K, M, G, T, P"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return c.of(t.Elem())
	case reflect.Struct:
		if t.Name() != "" {
			return c.ref(t)
		}
		return c.object(t)
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": c.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": c.of(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	}
	return map[string]any{}
}

func (c schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	c.fields(t, props, &required)
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		slices.Sort(required)
		out["required"] = required
	}
	return out
}

// fields adds the properties of t's fields to props; the fields of an
// embedded struct without a JSON name are its own, as encoding/json
// flattens them.
func (c schemas) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			c.fields(f.Type, props, required)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = c.of(f.Type)
		if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}
