package sqlite

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/postie/postie/internal/store"
)

// fileGuard notices the database file being removed, or another file being put at its path
// (renamed over it, as rsync and most restore tools do), under a running store. SQLite keeps
// using the file its connections opened, so without it a node whose file was deleted or moved
// would go on acknowledging messages into a file that no longer has a name, lost at the next
// restart, and its new read connections would open whatever now has the name. While the file at
// path is not the one Open opened (os.SameFile: device and inode), every write group is rolled
// back before its COMMIT and every read refused, with an error wrapping store.ErrUnavailable
// (the API's 503, /readyz included); once the same file is back (moved back), the store works
// again without a restart. A file overwritten in place (cp onto it) keeps its inode and is not
// noticed: that corrupts a live database whatever postie does, which is why the docs say to stop
// the node before restoring.
//
// A check is one stat(2): about a microsecond, once per write group and once per read.
type fileGuard struct {
	path string
	file os.FileInfo // the file the writer connection opened
	log  *slog.Logger
	lost atomic.Bool // the last check failed; for logging the changes only
}

func newFileGuard(path string, log *slog.Logger) (*fileGuard, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &fileGuard{path: path, file: fi, log: log}, nil
}

// check returns nil while the file at path is the one the store opened.
func (g *fileGuard) check() error {
	fi, err := os.Stat(g.path)
	if err == nil && os.SameFile(fi, g.file) {
		if g.lost.CompareAndSwap(true, false) {
			g.log.Info("sqlite: the database file is back; reads and writes resume", "path", g.path)
		}
		return nil
	}
	what := "replaced by another file"
	if errors.Is(err, os.ErrNotExist) {
		what = "removed or moved away"
	} else if err != nil {
		what = "unreadable (" + err.Error() + ")"
	}
	if g.lost.CompareAndSwap(false, true) {
		g.log.Error("sqlite: the database file was "+what+" while postie runs: refusing reads and writes until it is back (or restart on the right file)",
			"path", g.path)
	}
	return fmt.Errorf("sqlite: the database file %s was %s: %w", g.path, what, store.ErrUnavailable)
}
