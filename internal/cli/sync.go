package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/store"
	"github.com/spf13/cobra"
)

// syncCmd runs sync sources once, outside their schedule (postie serve runs them on it).
func (e *env) syncCmd() *cobra.Command {
	var (
		once, reconcile bool
		source          string
	)
	cmd := &cobra.Command{
		Use:   "sync --once [--source ID]",
		Short: "Run one pass of every sync source (or one), then exit",
		Long: "Read the application databases configured as sync sources (/v1/sources) into contacts: one\n" +
			"pass of each source, or of --source, whatever its schedule, printing what each did. postie serve\n" +
			"runs the sources on their schedule; a source a server is running is skipped. Exits 1 when a\n" +
			"pass failed (its error is also recorded on the source).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !once {
				return usageError{errors.New("sync needs --once (postie serve runs the sources on their schedule)")}
			}
			cfg, err := e.load(cmd.Flags())
			if err != nil {
				return err
			}
			log := e.logger(cfg)
			st, err := app.OpenStore(cmd.Context(), cfg, log, true)
			if err != nil {
				return err
			}
			defer st.Close()
			// Contacts are written as the API writes them.
			contacts := audience.New(audience.Config{Store: st, Logger: log})
			syncer := app.NewSyncer(st, contacts, app.CLIOwner("sync"), log)
			ids := []string{source}
			if source == "" {
				srcs, err := st.SourceList(cmd.Context())
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, src := range srcs {
					ids = append(ids, src.ID)
				}
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tSTATUS\tROWS\tUPSERTED\tDELETED\tSKIPPED\tERROR")
			var failed error
			for _, id := range ids {
				src, err := syncer.RunOne(cmd.Context(), id, reconcile)
				if err != nil {
					fmt.Fprintf(tw, "%s\t-\t\t\t\t\t%v\n", id, err)
					failed = errors.Join(failed, err)
					continue
				}
				stats := src.LastStats
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", src.ID, src.Status, stats.Rows, stats.Upserted, stats.Deleted, stats.Skipped, src.LastError)
				if src.Status == store.SourceError {
					failed = errors.Join(failed, fmt.Errorf("source %s: %s", src.ID, src.LastError))
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(ids) == 0 {
				fmt.Fprintln(e.stderr, "no sync sources configured (POST /v1/sources)")
			}
			return failed
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "run one pass and exit (required)")
	cmd.Flags().StringVar(&source, "source", "", "only this source (src_…)")
	cmd.Flags().BoolVar(&reconcile, "reconcile", false, "also reconcile: delete the contacts whose rows are gone")
	config.FlagsOnly(cmd.Flags(), storeFlags...)
	return cmd
}
