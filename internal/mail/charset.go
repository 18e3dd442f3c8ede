package mail

import (
	"errors"
	"io"
	"mime"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// charsetDecoder returns a decoder to UTF-8 for the single-byte charsets bounces are commonly
// written in, nil for any other (UTF-8 and US-ASCII need none; the rest is read as it is, and
// invalid bytes become U+FFFD when cleaned).
func charsetDecoder(name string) *encoding.Decoder {
	var cm *charmap.Charmap
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "iso-8859-1", "iso_8859-1", "latin1", "l1":
		cm = charmap.ISO8859_1
	case "windows-1252", "cp1252":
		cm = charmap.Windows1252
	case "iso-8859-15", "iso_8859-15", "latin-9":
		cm = charmap.ISO8859_15
	case "iso-8859-2", "iso_8859-2", "latin2":
		cm = charmap.ISO8859_2
	case "windows-1250", "cp1250":
		cm = charmap.Windows1250
	case "windows-1251", "cp1251":
		cm = charmap.Windows1251
	case "koi8-r":
		cm = charmap.KOI8R
	default:
		return nil
	}
	return cm.NewDecoder()
}

// headerWords decodes RFC 2047 encoded-words in UTF-8, US-ASCII and the charsets of
// charsetDecoder.
var headerWords = &mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	if d := charsetDecoder(charset); d != nil {
		return d.Reader(input), nil
	}
	return nil, errUnknownCharset
}}

var errUnknownCharset = errors.New("mail: unknown charset")
