package doctor

import (
	"fmt"
	"os"
	"strings"
)

// checkFile checks that a configuration file holding secrets is readable by its owner only.
func checkFile(o Options) []Result {
	if o.Sources.File == "" {
		return nil
	}
	secrets := o.Config.FileSecrets(o.Sources)
	fi, err := os.Stat(o.Sources.File)
	switch {
	case err != nil:
		return []Result{{"config", Warn, err.Error(), ""}}
	case len(secrets) == 0:
		return []Result{{Check: "config", Status: OK, Detail: o.Sources.File + ": holds no secret"}}
	case fi.Mode().Perm()&0o077 != 0:
		return []Result{{"config", Warn, fmt.Sprintf("%s holds secrets (%s) and is readable by others (mode %04o)", o.Sources.File, strings.Join(secrets, ", "), fi.Mode().Perm()),
			fmt.Sprintf("chmod 600 %s (owned by postie's user), or move the secrets to the environment", o.Sources.File)}}
	}
	return []Result{{Check: "config", Status: OK, Detail: fmt.Sprintf("%s holds secrets (%s), readable by its owner only", o.Sources.File, strings.Join(secrets, ", "))}}
}
