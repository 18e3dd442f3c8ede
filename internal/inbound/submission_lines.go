package inbound

import (
	"bytes"
	"crypto/tls"
	"fmt"
)

// BareLineEnd returns the offset of the first CR not followed by LF or LF not preceded by CR in
// data, or -1 when every line ends with CRLF. Such line ends are what SMTP smuggling exploits
// (a receiver that takes "\n.\n" or "\r.\n" for the end of data sees a second message where
// the sender's server saw one), so the listeners refuse them (email-rules §5.2).
func BareLineEnd(data []byte) int {
	for i := 0; ; {
		j := bytes.IndexAny(data[i:], "\r\n")
		if j < 0 {
			return -1
		}
		i += j
		if data[i] == '\n' || i+1 == len(data) || data[i+1] != '\n' {
			return i
		}
		i += 2
	}
}

// LoadTLS reads the PEM certificate (chain) and key offered by STARTTLS on the SMTP listeners.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("POSTIE_TLS_CERT / POSTIE_TLS_KEY: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
