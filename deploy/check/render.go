package check

import (
	"fmt"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
)

// kubeVersion is the Kubernetes version the chart is rendered for (its Capabilities).
const kubeVersion = "v1.33.0"

// renderChart renders the chart in dir as `helm template` does (an install's client-side dry
// run: no cluster), with vals over its values.yaml, and returns every manifest, hooks included, as
// one YAML stream.
func renderChart(dir string, vals map[string]any) (string, error) {
	chrt, err := loader.Load(dir)
	if err != nil {
		return "", err
	}
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		return "", err
	}
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = "postie"
	install.Namespace = "mail"
	install.Replace = true
	install.KubeVersion = kv
	r, err := install.Run(chrt, vals)
	if err != nil {
		return "", err
	}
	rel, ok := r.(*release.Release)
	if !ok {
		return "", fmt.Errorf("install returned a %T", r)
	}
	var b strings.Builder
	b.WriteString(rel.Manifest)
	for _, h := range rel.Hooks {
		fmt.Fprintf(&b, "\n---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return b.String(), nil
}
