package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type inner struct {
	Fanout   int           `yaml:"fanout"`
	Interval time.Duration `yaml:"interval"`
	Untagged string
}

type sample struct {
	Node struct {
		Name      string   `yaml:"name"`
		Bootstrap []string `yaml:"bootstrap"`
		Cert      string   `yaml:"cert"`
	} `yaml:"node"`
	Gossip inner  `yaml:"gossip"`
	Hook   func() `yaml:"hook"`
}

func defaults() *sample {
	s := &sample{}
	s.Node.Name = "default"
	s.Gossip = inner{Fanout: 3, Interval: time.Second, Untagged: "u"}
	return s
}

func TestParseLayersFileOverDefaults(t *testing.T) {
	s := defaults()
	err := Parse("c.yaml", []byte("node:\n  bootstrap: [a:1, b:2]\ngossip:\n  interval: 250ms\n"), nil, s)
	require.NoError(t, err)
	require.Equal(t, "default", s.Node.Name, "a key absent from the file keeps its default")
	require.Equal(t, []string{"a:1", "b:2"}, s.Node.Bootstrap)
	require.Equal(t, 250*time.Millisecond, s.Gossip.Interval)
	require.Equal(t, 3, s.Gossip.Fanout)
}

func TestParseEmptyFileKeepsDefaults(t *testing.T) {
	s := defaults()
	require.NoError(t, Parse("c.yaml", nil, nil, s))
	require.Equal(t, defaults().Gossip, s.Gossip)
}

func TestEnvOverridesFile(t *testing.T) {
	s := defaults()
	env := []string{
		"BLOCKGOSSIP_GOSSIP_FANOUT=7",
		"BLOCKGOSSIP_NODE_BOOTSTRAP=x:1, y:2",
		"BLOCKGOSSIP_NODE_NAME=0123", // stays a string
		"BLOCKGOSSIP_GOSSIP_UNTAGGED=v",
		"BLOCKGOSSIP_OTHERROLE_KEY=ignored", // a section this config lacks
		"PATH=/bin",
	}
	err := Parse("c.yaml", []byte("gossip:\n  fanout: 4\n"), env, s)
	require.NoError(t, err)
	require.Equal(t, 7, s.Gossip.Fanout)
	require.Equal(t, []string{"x:1", "y:2"}, s.Node.Bootstrap)
	require.Equal(t, "0123", s.Node.Name)
	require.Equal(t, "v", s.Gossip.Untagged)

	s = defaults()
	require.NoError(t, Parse("c.yaml", nil, []string{"BLOCKGOSSIP_NODE_BOOTSTRAP=[p:1, q:2]"}, s))
	require.Equal(t, []string{"p:1", "q:2"}, s.Node.Bootstrap)
}

func TestUnknownKeysAreRejectedWithLine(t *testing.T) {
	err := Parse("c.yaml", []byte("node:\n  name: x\n  bootstrapp: [a]\n"), nil, defaults())
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, `c.yaml line 3: unknown key "bootstrapp" under node`)
	require.ErrorContains(t, err, "name, bootstrap, cert")

	err = Parse("c.yaml", []byte("nodes: {}\n"), nil, defaults())
	require.ErrorContains(t, err, `unknown key "nodes" at the top level; valid keys there: node, gossip`)

	err = Parse("c.yaml", nil, []string{"BLOCKGOSSIP_GOSSIP_FANOUTT=3"}, defaults())
	require.ErrorContains(t, err, "BLOCKGOSSIP_GOSSIP_FANOUTT names no configuration key")
}

func TestBadValuesAndFiles(t *testing.T) {
	err := Parse("c.yaml", []byte("gossip:\n  interval: soon\n"), nil, defaults())
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "c.yaml")

	err = Parse("c.yaml", []byte("- a\n- b\n"), nil, defaults())
	require.ErrorContains(t, err, "top level must be a mapping")

	err = Parse("c.yaml", []byte("node: [\n"), nil, defaults())
	require.ErrorContains(t, err, "not valid YAML")

	err = Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, defaults())
	require.True(t, errors.Is(err, ErrInvalid))
	require.ErrorContains(t, err, "missing.yaml")
}

func TestLoadFromFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte("node:\n  cert: ../certs/c.pem\n"), 0o600))
	s := defaults()
	require.NoError(t, Load(p, nil, s))
	require.Equal(t, filepath.Join(filepath.Dir(filepath.Dir(p)), "certs", "c.pem"), ResolvePath(p, s.Node.Cert))
	require.Equal(t, "/abs/x", ResolvePath(p, "/abs/x"))
	require.Equal(t, "", ResolvePath(p, ""))
}

func TestKeysListsEveryLeaf(t *testing.T) {
	var paths, envs []string
	for _, k := range Keys(defaults()) {
		paths = append(paths, k.Path)
		envs = append(envs, k.Env)
	}
	require.Equal(t, "node.name node.bootstrap node.cert gossip.fanout gossip.interval gossip.untagged", strings.Join(paths, " "))
	require.Contains(t, envs, "BLOCKGOSSIP_GOSSIP_INTERVAL")
}

func TestRequired(t *testing.T) {
	require.NoError(t, Required("peer.cert", "x"))
	err := Required("peer.cert", " ")
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "peer.cert is required")
	require.ErrorContains(t, err, "BLOCKGOSSIP_PEER_CERT")
}

type files struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

type withInline struct {
	Node struct {
		files  `yaml:",inline"`
		Listen string `yaml:"listen"`
	} `yaml:"node"`
}

func TestInlineStructsShareTheirParentsKeys(t *testing.T) {
	var s withInline
	err := Parse("c.yaml", []byte("node:\n  cert: c.pem\n  listen: x:1\n"), []string{"BLOCKGOSSIP_NODE_KEY=k.pem"}, &s)
	require.NoError(t, err)
	require.Equal(t, "c.pem", s.Node.Cert)
	require.Equal(t, "k.pem", s.Node.Key)
	require.Equal(t, "x:1", s.Node.Listen)
	var paths []string
	for _, k := range Keys(&s) {
		paths = append(paths, k.Path)
	}
	require.Equal(t, []string{"node.cert", "node.key", "node.listen"}, paths)
	err = Parse("c.yaml", []byte("node:\n  files: {}\n"), nil, &s)
	require.ErrorContains(t, err, "valid keys there: cert, key, listen")
}
