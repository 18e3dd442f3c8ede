// Package cli holds postie's subcommands. Each turns flags and environment into a config and calls
// into app (or, for send, the HTTP API); none holds business logic.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/errtrack"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// env is how commands read the environment (injected for tests).
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// Run executes the command line args and returns the process exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "postie",
		Short:         "Self-hosted email delivery: accept over HTTP, store durably, deliver",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(e.serveCmd(), e.migrateCmd(), e.versionCmd(), e.sendCmd(), e.benchCmd(), e.sinkCmd(), e.keysCmd(), e.syncCmd(),
		e.configCmd(), e.doctorCmd(), e.healthcheckCmd(), e.backupCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "postie:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

func (e *env) load(fs *pflag.FlagSet) (config.Config, error) {
	cfg, _, err := e.resolve(fs)
	return cfg, err
}

// resolve loads the configuration (file, environment, flags) and checks it, every error naming
// where its value came from.
func (e *env) resolve(fs *pflag.FlagSet) (config.Config, config.Sources, error) {
	cfg, src, err := config.Resolve(e.getenv, fs)
	if err = errors.Join(err, src.Rename(app.CheckConfig(cfg))); err != nil {
		return cfg, src, usageError{fmt.Errorf("configuration:\n%w", err)}
	}
	return cfg, src, nil
}

func (e *env) logger(cfg config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(e.stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(e.stderr, opts)
	}
	// The configured API key is masked in log lines and error reports whatever its shape.
	errtrack.AddSecret(cfg.APIKey)
	if !cfg.LogPII {
		// Addresses (in relay replies, errors, any line) are masked unless the operator asks.
		h = errtrack.ScrubHandler(h)
	}
	return slog.New(h)
}

func (e *env) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API and the delivery engine",
		Long: "Run the HTTP API and the delivery engine. With no configuration postie uses an embedded SQLite\n" +
			"database in ./postie-data and the capture transport: nothing leaves the machine and every message\n" +
			"can be read back through the API. Every flag can also be set by the environment variable shown.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, src, err := e.resolve(cmd.Flags())
			if err != nil {
				return err
			}
			log := e.logger(cfg)
			if e.getenv("GOGC") == "" {
				// The live heap is small and bounded (requests in flight, claimed batches), so
				// collect less often than the default of 100 and spend less CPU on collection.
				debug.SetGCPercent(400)
			}
			if e.getenv("GOMEMLIMIT") == "" {
				// GOGC=400 lets the heap grow to five times what is live, which large requests
				// make a lot: a soft limit above what their budget keeps live (each byte of
				// it about three times: body, decoded files, MIME) makes the collector run
				// sooner then, and changes nothing while the heap is small (never under 256
				// MiB, which a busy node of small messages reaches with GOGC=400).
				debug.SetMemoryLimit(max(256<<20, 128<<20+3*cfg.InflightBytes()))
			}
			a, err := app.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			transport := "capture (nothing leaves the machine)"
			if cfg.SMTPURL != "" {
				transport = "smtp relay"
			}
			db, _ := cfg.Database()
			fmt.Fprintf(e.stdout, "postie %s\n  API:       http://%s/v1  (OpenAPI: http://%s/v1/openapi.json)\n", app.ReadVersion(), a.Addr(), a.Addr())
			fmt.Fprintf(e.stdout, "  database:  %s %s%s\n  transport: %s\n", db.Driver, db.Path, redact(db.URL), transport)
			if addr := a.AdminAddr(); addr != "" {
				fmt.Fprintf(e.stdout, "  admin:     http://%s/metrics  (metrics, /healthz, /readyz: no API key)\n", addr)
			}
			if addr := a.SubmissionAddr(); addr != "" {
				fmt.Fprintf(e.stdout, "  SMTP:      %s  (submission: AUTH with an API key as the password)\n", addr)
			}
			switch {
			case a.GeneratedKey != "":
				fmt.Fprintf(e.stdout, "  API key:   %s\n             (generated now and shown only once: keep it, or set POSTIE_API_KEY)\n", a.GeneratedKey)
			case cfg.APIKey != "":
				fmt.Fprintf(e.stdout, "  API key:   the value of POSTIE_API_KEY\n")
			default:
				fmt.Fprintf(e.stdout, "  API key:   the one printed at first start (lost? postie keys create makes another)\n")
			}
			if src.File != "" {
				fmt.Fprintf(e.stdout, "  config:    %s (the environment and flags override it)\n", src.File)
			}
			return a.Run(cmd.Context())
		},
	}
	config.Flags(cmd.Flags())
	return cmd
}

func (e *env) migrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema, then exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.load(cmd.Flags())
			if err != nil {
				return err
			}
			st, err := app.OpenStore(cmd.Context(), cfg, e.logger(cfg), true)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "database is up to date")
			return st.Close()
		},
	}
	config.FlagsOnly(cmd.Flags(), storeFlags...)
	return cmd
}

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit it was built from, and the Go release",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := app.ReadVersion()
			fmt.Fprintln(e.stdout, "postie", v, v.Go)
		},
	}
}
