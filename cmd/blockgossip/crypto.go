package main

import (
	"fmt"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/spf13/cobra"
)

func newCryptoCmd() *cobra.Command {
	c := &cobra.Command{Use: "crypto", Short: "Crypto material: CAs, node, admin and client certificates"}
	c.AddCommand(newCryptoGenerateCmd())
	return c
}

func newCryptoGenerateCmd() *cobra.Command {
	var (
		spec identity.GenerateSpec
		out  string
	)
	c := &cobra.Command{
		Use:   "generate --orgs N --peers-per-org M --out DIR",
		Short: "Generate an ed25519 CA per org and certificates for the orderer, peers, admins and clients",
		Long: `Generate writes a network's crypto material to DIR:

  DIR/network-description.json   trusted org CAs, the pinned orderer certificate
  DIR/<org>/ca/ca.crt, ca.key    each org's CA
  DIR/<org>/<name>/cert.pem, key.pem, ca.crt   each member

Orgs are org1..orgN with peers orgK-peer0.., an admin and a client each; the
orderer org is ordererorg with the node orderer. An existing DIR with the same
shape is reused as is; any other content is refused, so nothing is overwritten.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out DIR is required")}
			}
			mat, err := identity.Generate(out, spec)
			if err != nil {
				return fmt.Errorf("crypto generate: %w", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "crypto material for %d orgs x %d peers in %s\n", spec.Orgs, spec.PeersPerOrg, mat.Dir)
			fmt.Fprintf(w, "  network description  %s\n", mat.NetworkPath)
			fmt.Fprintf(w, "  %-20s %s\n", mat.Orderer.Name, mat.Orderer.Cert)
			for _, p := range mat.Peers {
				fmt.Fprintf(w, "  %-20s %s\n", p.Name, p.Cert)
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&spec.Orgs, "orgs", 2, "number of peer organisations (org1..orgN)")
	f.IntVar(&spec.PeersPerOrg, "peers-per-org", 3, "peers in each organisation")
	f.StringVar(&out, "out", "", "directory to write (created if missing)")
	f.DurationVar(&spec.Validity, "validity", identity.DefaultValidity, "certificate lifetime")
	f.StringSliceVar(&spec.Hosts, "hosts", identity.DefaultHosts, "subject alternative names of member certificates")
	return c
}
