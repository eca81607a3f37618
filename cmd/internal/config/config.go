// Package config loads a node's YAML configuration for the blockgossip
// binary. Values are layered, each layer overriding the one before:
//
//  1. the defaults already held by the struct passed to Load;
//  2. the YAML file;
//  3. environment variables: BLOCKGOSSIP_ followed by the key path in upper
//     case with dots turned into underscores, e.g. peer.listenAddress is
//     BLOCKGOSSIP_PEER_LISTENADDRESS and gossip.fanout is
//     BLOCKGOSSIP_GOSSIP_FANOUT. A list takes a comma-separated value
//     ("a:1,b:2") or a YAML flow sequence ("[a:1, b:2]");
//  4. command-line flags, applied by the caller after Load.
//
// Keys are matched against the target struct: a key the struct does not
// have is an error naming the file, the line and the keys that are valid
// there, so a typo never silently falls back to a default.
//
// Only cmd/ reads files and the environment; the packages it configures
// receive plain Config structs.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "BLOCKGOSSIP_"

// ErrInvalid marks a configuration that cannot be used; the message says
// which key and what to do.
var ErrInvalid = errors.New("invalid configuration")

// Load reads the YAML file at path into out, a pointer to a struct that
// already holds the defaults, then applies overrides from env (entries of
// the form KEY=VALUE, as os.Environ returns). Environment variables whose
// first path element is not a section of out are ignored (they belong to
// another kind of node); one that names a section of out but no key in it
// is an error.
func Load(path string, env []string, out any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: read config %s: %v (pass --config with the path of a YAML file; cmd/blockgossip/sample-*.yaml documents every key)", ErrInvalid, path, err)
	}
	return Parse(path, raw, env, out)
}

// Parse is Load on bytes already read; name is used in error messages.
func Parse(name string, raw []byte, env []string, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config.Parse: out must be a pointer to a struct, got %T", out)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%w: %s is not valid YAML: %v", ErrInvalid, name, err)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: %s line %d: the top level must be a mapping of sections (%s)",
			ErrInvalid, name, root.Line, strings.Join(fieldNames(rv.Elem().Type()), ", "))
	}
	if err := checkKnown(name, root, rv.Elem().Type(), nil); err != nil {
		return err
	}
	if err := applyEnv(root, rv.Elem().Type(), env); err != nil {
		return err
	}
	if err := root.Decode(out); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	return nil
}

// checkKnown walks a mapping node beside the struct type it decodes into
// and rejects keys the struct does not have.
func checkKnown(name string, n *yaml.Node, t reflect.Type, path []string) error {
	t = deref(t)
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct && !isLeafType(t):
		fields := fieldsOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				where := "at the top level"
				if len(path) > 0 {
					where = "under " + strings.Join(path, ".")
				}
				return fmt.Errorf("%w: %s line %d: unknown key %q %s; valid keys there: %s",
					ErrInvalid, name, k.Line, k.Value, where, strings.Join(fieldNames(t), ", "))
			}
			if err := checkKnown(name, v, f.Type, append(path, k.Value)); err != nil {
				return err
			}
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for _, item := range n.Content {
			if err := checkKnown(name, item, t.Elem(), path); err != nil {
				return err
			}
		}
	}
	return nil
}

// Key is one leaf key of a configuration: its dotted path, the environment
// variable that overrides it and its Go type.
type Key struct {
	Path string
	Env  string
	Type reflect.Type
}

// Keys lists every leaf key of the configuration struct out points to (or
// is), in field order.
func Keys(out any) []Key {
	t := deref(reflect.TypeOf(out))
	var keys []Key
	walkLeaves(t, nil, func(path []string, ft reflect.Type) {
		keys = append(keys, Key{Path: strings.Join(path, "."), Env: envName(path), Type: ft})
	})
	return keys
}

func envName(path []string) string {
	return EnvPrefix + strings.ToUpper(strings.Join(path, "_"))
}

func walkLeaves(t reflect.Type, path []string, fn func([]string, reflect.Type)) {
	t = deref(t)
	if t.Kind() != reflect.Struct || isLeafType(t) {
		fn(slices.Clone(path), t)
		return
	}
	for _, name := range fieldNames(t) {
		walkLeaves(fieldsOf(t)[name].Type, append(path, name), fn)
	}
}

// applyEnv sets the node of every key that has an environment variable.
func applyEnv(root *yaml.Node, t reflect.Type, env []string) error {
	known := map[string][]string{}
	walkLeaves(t, nil, func(path []string, _ reflect.Type) { known[envName(path)] = path })
	sections := map[string]bool{}
	for _, name := range fieldNames(deref(t)) {
		sections[strings.ToUpper(name)] = true
	}
	var vars []string
	for _, kv := range env {
		if strings.HasPrefix(kv, EnvPrefix) {
			vars = append(vars, kv)
		}
	}
	slices.Sort(vars) // deterministic order of application and errors
	for _, kv := range vars {
		name, value, _ := strings.Cut(kv, "=")
		path, ok := known[name]
		if !ok {
			section, _, _ := strings.Cut(strings.TrimPrefix(name, EnvPrefix), "_")
			if sections[section] {
				return fmt.Errorf("%w: environment variable %s names no configuration key; unset it or fix its name (see `blockgossip config keys`)", ErrInvalid, name)
			}
			continue
		}
		setPath(root, path, valueNode(value, leafType(t, path)))
	}
	return nil
}

// valueNode turns an environment value into a YAML node; lists accept
// comma-separated values or YAML flow syntax.
func valueNode(value string, t reflect.Type) *yaml.Node {
	if t != nil && t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 {
		if strings.HasPrefix(strings.TrimSpace(value), "[") {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(value), &n); err == nil && len(n.Content) == 1 {
				return n.Content[0]
			}
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, item := range strings.Split(value, ",") {
			if item = strings.TrimSpace(item); item != "" {
				seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: item})
			}
		}
		return seq
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: value}
	if t != nil && t.Kind() == reflect.String {
		n.Tag = "!!str" // a name like "on" or "0123" stays a string
	}
	return n
}

func leafType(t reflect.Type, path []string) reflect.Type {
	for _, p := range path {
		f, ok := fieldsOf(deref(t))[p]
		if !ok {
			return nil
		}
		t = f.Type
	}
	return deref(t)
}

// setPath replaces (or creates) the value at path in a mapping tree.
func setPath(n *yaml.Node, path []string, value *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			n.Content[i+1] = value
			return
		}
		child := n.Content[i+1]
		if child.Kind != yaml.MappingNode {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content[i+1] = child
		}
		setPath(child, path[1:], value)
		return
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}
	if len(path) == 1 {
		n.Content = append(n.Content, key, value)
		return
	}
	child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	n.Content = append(n.Content, key, child)
	setPath(child, path[1:], value)
}

// ResolvePath makes a path read from the config file at configPath
// absolute: a relative path is taken relative to the file's directory, so
// a node starts the same from any working directory. Empty stays empty.
func ResolvePath(configPath, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	dir := filepath.Dir(configPath)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Join(dir, p)
}

// Required returns an error naming the key and how to set it when value is
// empty.
func Required(key, value string) error {
	if strings.TrimSpace(value) != "" {
		return nil
	}
	return fmt.Errorf("%w: %s is required: set it in the config file or in %s", ErrInvalid, key, envName(strings.Split(key, ".")))
}
