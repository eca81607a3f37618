package config

import (
	"encoding"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// How a configuration struct maps to YAML keys: yaml.v3's rules, so that
// what Load checks is exactly what the decoder fills.

var (
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// isLeafType reports whether a struct type decodes itself (and so is one
// key, not a section).
func isLeafType(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(yamlUnmarshaler) || p.Implements(yamlUnmarshaler) ||
		t.Implements(textUnmarshaler) || p.Implements(textUnmarshaler)
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldsOf maps the YAML key of each configurable field of a struct type
// to the field, using yaml.v3's naming: the tag, else the lower-cased name.
// Fields of an ",inline" struct count as the outer struct's.
func fieldsOf(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for _, f := range fieldList(t) {
		m[f.name] = f.field
	}
	return m
}

// fieldNames lists the keys of a struct type in field order.
func fieldNames(t reflect.Type) []string {
	var names []string
	for _, f := range fieldList(t) {
		names = append(names, f.name)
	}
	return names
}

type namedField struct {
	name  string
	field reflect.StructField
}

func fieldList(t reflect.Type) []namedField {
	var out []namedField
	for i := range t.NumField() {
		f := t.Field(i)
		if inline(f) {
			out = append(out, fieldList(deref(f.Type))...)
			continue
		}
		if name, ok := keyName(f); ok {
			out = append(out, namedField{name, f})
		}
	}
	return out
}

func inline(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return slices.Contains(strings.Split(opts, ","), "inline") && deref(f.Type).Kind() == reflect.Struct
}

func keyName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	switch f.Type.Kind() {
	case reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return "", false
	}
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch tag {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return tag, true
}
