package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/config"
)

func (e *env) backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the SQLite database to FILE, consistently, while postie runs",
		Long: "Write a consistent copy (a snapshot of one moment) of the SQLite database to FILE, which must\n" +
			"not exist, while postie keeps running and delivering: the copy is one read transaction\n" +
			"(VACUUM INTO), checked (PRAGMA integrity_check) before it is given its name. To restore, stop\n" +
			"postie and put the copy in place of the database file (docs/operations.md, Backups).\n" +
			"PostgreSQL has its own tools (pg_dump, pg_basebackup): this command refuses it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := e.load(cmd.Flags())
			if err != nil {
				return err
			}
			db, err := cfg.Database()
			if err != nil {
				return err
			}
			if db.Driver != "sqlite" {
				return fmt.Errorf("postie backup copies a SQLite database; back up PostgreSQL with its own tools: " +
					"pg_dump (a logical copy), or pg_basebackup with WAL archiving (point-in-time recovery); see docs/operations.md")
			}
			res, err := app.Backup(cmd.Context(), db.Path, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "backup of %s written to %s: %d bytes in %s, integrity check ok\n",
				db.Path, res.Path, res.Size, res.Duration.Round(1e6))
			return nil
		},
	}
	config.FlagsOnly(cmd.Flags(), storeFlags...)
	return cmd
}
