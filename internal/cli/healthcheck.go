package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/postie/postie/internal/config"
)

// healthcheckCmd is the probe of a container's HEALTHCHECK: a distroless image has no shell or
// curl, so the binary itself asks the running server for /healthz and answers by its exit status.
func (e *env) healthcheckCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the postie serving on this machine answers /healthz, 1 otherwise",
		Long: "Ask the postie serving on this machine for /healthz: on the admin listener (POSTIE_ADMIN_LISTEN)\n" +
			"or, when that is empty, on the API listener (POSTIE_LISTEN); a wildcard host (\":8080\", \"0.0.0.0\",\n" +
			"\"[::]\") is asked on loopback. Exit status 0 when it answers 200, 1 otherwise: for a container's\n" +
			"HEALTHCHECK, which has no curl in a distroless image.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.load(cmd.Flags())
			if err != nil {
				return err
			}
			addr := cfg.AdminListen
			if addr == "" {
				addr = cfg.Listen
			}
			u := "http://" + probeAddr(addr) + "/healthz"
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %s: %s", u, resp.Status, body)
			}
			fmt.Fprintf(e.stdout, "%s: %s", u, body)
			return nil
		},
	}
	config.FlagsOnly(cmd.Flags(), "listen", "admin-listen")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// probeAddr is the address to dial for a listen address: a wildcard or empty host (listening on
// every interface) is asked on loopback.
func probeAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
