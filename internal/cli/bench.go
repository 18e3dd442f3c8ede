package cli

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/postie/postie/internal/bench"
	"github.com/spf13/cobra"
)

func (e *env) benchCmd() *cobra.Command {
	cfg := bench.Config{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure accept throughput, latency and memory of a real postie server",
		Long: "Starts `postie serve` (this same binary) as a child process on a fresh embedded database and a\n" +
			"loopback port, then drives it over HTTP: single-message accepts from --clients concurrent clients,\n" +
			"then ----batch-size-message batches from --batch-clients clients. Prints a Markdown table for\n" +
			"docs/BENCHMARKS.md. Every accepted message is committed durably (synchronous=FULL) before its answer.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Binary, cfg.Out = exe, e.stdout
			fmt.Fprintf(e.stdout, "postie bench on %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
			rs, err := bench.Run(cmd.Context(), cfg)
			bench.Print(e.stdout, rs)
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long each scenario runs")
	f.IntVar(&cfg.Clients, "clients", 32, "concurrent clients sending single messages")
	f.IntVar(&cfg.BatchSize, "batch-size", 500, "messages per batch request")
	f.IntVar(&cfg.BatchConns, "batch-clients", 4, "concurrent clients sending batches")
	f.StringVar(&cfg.DataDir, "data-dir", "", "keep the server's database here (default: a temp dir, removed after)")
	return cmd
}
