package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/postie/postie/internal/config"
	"github.com/spf13/cobra"
)

// configCmd is `postie config check`: validate the configuration (file, environment, flags) and
// print the effective settings, secrets masked.
func (e *env) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration",
	}
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print every effective setting, where it came from, secrets masked",
		Long: "Validate the configuration as postie serve would load it (defaults, then the file of --config or\n" +
			"POSTIE_CONFIG, then the environment, then the flags given here) and print each setting's value and\n" +
			"source. Secrets (API key, link keys, the Sentry DSN's key, passwords in URLs) are masked.\n" +
			"Exit status 2 when the configuration is invalid, with every problem listed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, src, err := e.resolve(cmd.Flags())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SETTING\tVALUE\tSOURCE")
			for _, s := range cfg.Effective(src) {
				v := s.Value
				if v == "" {
					v = `""`
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.Key, v, s.Source)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "configuration is valid")
			if secrets := cfg.FileSecrets(src); len(secrets) > 0 {
				if fi, err := os.Stat(src.File); err == nil && fi.Mode().Perm()&0o077 != 0 {
					fmt.Fprintf(e.stdout, "warning: %s holds secrets (%s) and is readable by others (mode %04o): chmod 600 it, or set them in the environment\n",
						src.File, strings.Join(secrets, ", "), fi.Mode().Perm())
				}
			}
			return nil
		},
	}
	config.Flags(check.Flags())
	cmd.AddCommand(check)
	return cmd
}
