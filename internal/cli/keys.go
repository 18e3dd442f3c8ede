package cli

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postie/postie/internal/apikey"
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
	var (
		name     string
		settings apikey.Settings
	)
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create an API key and print its secret (shown only this once)",
		Example: "  postie keys create --name shop --scope send --scope read --sender-domain shop.example --rate 10 --burst 50",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ps := settings.Normalize(); len(ps) > 0 {
				errs := make([]error, len(ps))
				for i, p := range ps {
					errs[i] = fmt.Errorf("%s: %s", keyFlag(p.Field), p.Message)
				}
				return usageError{errors.Join(errs...)}
			}
			st, err := e.openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			secret, k, err := app.NewAPIKey(name, time.Now())
			if err != nil {
				return err
			}
			k.Scopes, k.SenderDomains, k.RateLimit, k.Burst = settings.Scopes, settings.SenderDomains, settings.RateLimit, settings.Burst
			if err := st.APIKeyCreate(cmd.Context(), k); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, secret)
			fmt.Fprintf(e.stderr, "created API key %s (%s, scopes %s): the secret above is shown only once\n", k.ID, k.Prefix,
				strings.Join(k.Scopes, ","))
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "created with postie keys create", "what the key is for, shown by list")
	create.Flags().StringSliceVar(&settings.Scopes, "scope", []string{apikey.ScopeAdmin},
		"what the key may do, repeated or comma-separated: "+strings.Join(apikey.Scopes, ", "))
	create.Flags().StringSliceVar(&settings.SenderDomains, "sender-domain", nil,
		"a From domain the key may send from, repeated or comma-separated (none: any)")
	create.Flags().Float64Var(&settings.RateLimit, "rate", 0, "messages per second the key may send, on each node (0: no limit)")
	create.Flags().IntVar(&settings.Burst, "burst", 0, "messages the key may send at once (0: a second's worth of --rate)")
	config.FlagsOnly(create.Flags(), storeFlags...)

	list := &cobra.Command{
		Use:   "list",
		Short: "List the API keys: id, name, prefix of the secret, what each may do, when it was created, last used and revoked",
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
			fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tSENDER DOMAINS\tRATE\tCREATED\tLAST USED\tREVOKED")
			for _, k := range ks {
				domains, rate := "any", "-"
				if len(k.SenderDomains) > 0 {
					domains = strings.Join(k.SenderDomains, ",")
				}
				if k.RateLimit > 0 {
					rate = fmt.Sprintf("%g/s burst %d", k.RateLimit, k.Burst)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, strings.Join(k.Scopes, ","),
					domains, rate, listTime(k.CreatedAt), listTime(k.LastUsedAt), listTime(k.RevokedAt))
			}
			return tw.Flush()
		},
	}
	config.FlagsOnly(list.Flags(), storeFlags...)

	revoke := &cobra.Command{
		Use:   "revoke ID|PREFIX|SECRET",
		Short: "Revoke an API key, named by its id, the prefix list shows, or the secret itself (it stays listed)",
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
			if !k.RevokedAt.IsZero() {
				fmt.Fprintf(e.stdout, "API key %s (%s, %s) was already revoked at %s\n", k.ID, k.Prefix, k.Name, listTime(k.RevokedAt))
				return nil
			}
			if _, err := st.APIKeyRevoke(cmd.Context(), k.ID, time.Now()); err != nil {
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

// listTime is a time as keys list shows it: RFC 3339 UTC, "-" for none.
func listTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// keyFlag names the flag of keys create that sets a field of apikey.Settings.
func keyFlag(field string) string {
	for json, flag := range map[string]string{"scopes": "--scope", "sender_domains": "--sender-domain", "rate_limit": "--rate", "burst": "--burst"} {
		if rest, ok := strings.CutPrefix(field, json); ok {
			return flag + rest
		}
	}
	return field
}
