package cli

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/store"
	"github.com/spf13/cobra"
)

// storeFlags are the settings of the commands that only open the database.
var storeFlags = []string{"database-url", "db-statement-timeout", "log-level", "log-format"}

// keysCmd manages API keys directly in the database, for an operator who has none at hand (the
// key printed at first start was lost) or wants one per client.
func (e *env) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (in the database of POSTIE_DATABASE_URL)",
		Long: "Manage API keys in the database directly; the server need not run. Only a key's SHA-256\n" +
			"is stored: its secret is printed once, by create. Every running server refuses a\n" +
			"revoked key within 5 seconds.",
	}
	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key and print its secret (shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := e.openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			secret, k, err := app.NewAPIKey(name, time.Now())
			if err != nil {
				return err
			}
			if err := st.APIKeyCreate(cmd.Context(), k); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, secret)
			fmt.Fprintf(e.stderr, "created API key %s (%s): the secret above is shown only once\n", k.ID, k.Prefix)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "created with postie keys create", "what the key is for, shown by list")
	config.FlagsOnly(create.Flags(), storeFlags...)

	list := &cobra.Command{
		Use:   "list",
		Short: "List the API keys: id, name, prefix of the secret, creation time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := e.openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			ks, err := st.APIKeyList(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tCREATED")
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, k.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	config.FlagsOnly(list.Flags(), storeFlags...)

	revoke := &cobra.Command{
		Use:   "revoke ID|PREFIX|SECRET",
		Short: "Delete an API key, named by its id, the prefix list shows, or the secret itself",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			k, err := findKey(cmd, st, strings.TrimSpace(args[0]))
			if err != nil {
				return err
			}
			if err := st.APIKeyDelete(cmd.Context(), k.ID); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked API key %s (%s, %s)\n", k.ID, k.Prefix, k.Name)
			return nil
		},
	}
	config.FlagsOnly(revoke.Flags(), storeFlags...)

	cmd.AddCommand(create, list, revoke)
	return cmd
}

// openStore opens (and migrates) the database of the command's configuration.
func (e *env) openStore(cmd *cobra.Command) (store.Store, error) {
	cfg, err := e.load(cmd.Flags())
	if err != nil {
		return nil, err
	}
	return app.OpenStore(cmd.Context(), cfg, e.logger(cfg), true)
}

// findKey finds the one key that arg names: its id, its listed prefix, or its secret.
func findKey(cmd *cobra.Command, st store.APIKeys, arg string) (store.APIKey, error) {
	if arg == "" {
		return store.APIKey{}, usageError{errors.New("name the key to revoke: its id, prefix or secret")}
	}
	sum := sha256.Sum256([]byte(arg))
	if k, err := st.APIKeyByHash(cmd.Context(), sum[:]); err == nil {
		return k, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, err
	}
	ks, err := st.APIKeyList(cmd.Context())
	if err != nil {
		return store.APIKey{}, err
	}
	var byPrefix []store.APIKey
	for _, k := range ks {
		if k.ID == arg {
			return k, nil
		}
		if k.Prefix == arg {
			byPrefix = append(byPrefix, k)
		}
	}
	switch len(byPrefix) {
	case 0:
		return store.APIKey{}, fmt.Errorf("no API key has the id, prefix or secret %q (see postie keys list)", arg)
	case 1:
		return byPrefix[0], nil
	}
	ids := make([]string, len(byPrefix))
	for i, k := range byPrefix {
		ids[i] = k.ID
	}
	return store.APIKey{}, fmt.Errorf("%d API keys have the prefix %q: revoke one by its id (%s)", len(ids), arg, strings.Join(ids, ", "))
}
