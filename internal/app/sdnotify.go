package app

import (
	"net"
	"os"
	"strings"
)

// sdNotify tells the service manager that started postie about its state ("READY=1",
// "STOPPING=1", "STATUS=…"), by systemd's notify protocol: one datagram on the unix socket named
// by $NOTIFY_SOCKET (a leading @ names a socket in the abstract namespace). Without
// NOTIFY_SOCKET (not started by systemd with Type=notify, or a container) it does nothing. A
// failure to send is returned for the log; postie serves on regardless, and systemd then ends the
// start by its timeout, which is what an unreadable socket deserves.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// notifyState sends state by sdNotify, logging (not returning) a failure.
func (a *App) notifyState(state string) {
	if err := sdNotify(state); err != nil {
		a.log.Warn("could not notify the service manager", "state", state, "err", err)
	}
}
