package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
)

// OpenAPI documents of the Kubernetes API that Go modules ship, oldest first: a definition in a
// later one replaces the same definition in an earlier one. kubeconform's own schemas are
// downloaded from the internet, which the tests cannot reach; these come with modules the Helm
// library needs anyway, so they are in the module cache (and pinned by go.sum) wherever the tests
// build.
var openAPISources = []struct{ module, glob string }{
	// Swagger 2.0 of every built-in API group (policy/v1, autoscaling/v2 included).
	{"k8s.io/cli-runtime", "artifacts/openapi/swagger.json"},
	// OpenAPI 3.0 of the core, apps and batch groups, of a newer Kubernetes.
	{"k8s.io/client-go", "openapi/openapitest/testdata/*_openapi.json"},
}

// kubeDefinitions reads the OpenAPI definitions of every source, keyed by name
// ("io.k8s.api.apps.v1.Deployment"). dirOf gives a module's directory.
func kubeDefinitions(dirOf func(module string) (string, error)) (map[string]any, error) {
	defs := map[string]any{}
	for _, src := range openAPISources {
		dir, err := dirOf(src.module)
		if err != nil {
			return nil, err
		}
		files, err := filepath.Glob(filepath.Join(dir, src.glob))
		if err != nil || len(files) == 0 {
			return nil, fmt.Errorf("no OpenAPI document %s in %s (%v)", src.glob, dir, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			var doc struct {
				Definitions map[string]any `json:"definitions"`
				Components  struct {
					Schemas map[string]any `json:"schemas"`
				} `json:"components"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			maps.Copy(defs, doc.Definitions)
			maps.Copy(defs, doc.Components.Schemas)
		}
	}
	addSleepAction(defs)
	return defs, nil
}

// addSleepAction adds the sleep action of a lifecycle hook (Kubernetes 1.30, the chart's preStop)
// to the documents, which predate it: its definition as Kubernetes serves it.
func addSleepAction(defs map[string]any) {
	h, ok := defs["io.k8s.api.core.v1.LifecycleHandler"].(map[string]any)
	if !ok {
		return
	}
	props, ok := h["properties"].(map[string]any)
	if !ok || props["sleep"] != nil {
		return
	}
	defs["io.k8s.api.core.v1.SleepAction"] = map[string]any{
		"type":       "object",
		"required":   []any{"seconds"},
		"properties": map[string]any{"seconds": map[string]any{"type": "integer", "format": "int64"}},
	}
	props["sleep"] = map[string]any{"$ref": "#/definitions/io.k8s.api.core.v1.SleepAction"}
}

// writeKubeSchemas writes into dir one standalone JSON schema for each kind of kinds (as
// "apiVersion kind": "apps/v1 Deployment"), named as schemaLocation makes kubeconform look for it,
// the way kubeconform's own schemas are made from the OpenAPI definitions (openapi2jsonschema
// --standalone --strict): every $ref inlined, and objects with declared properties closed to
// others, so that a misspelt or misplaced field fails.
func writeKubeSchemas(dir string, defs map[string]any, kinds []string) error {
	byGVK := map[string]string{}
	for name, d := range defs {
		m, _ := d.(map[string]any)
		gvks, _ := m["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g, _ := g.(map[string]any)
			av := fmt.Sprint(g["version"])
			if grp := fmt.Sprint(g["group"]); grp != "" {
				av = grp + "/" + av
			}
			kind := fmt.Sprint(g["kind"])
			// DeleteOptions and WatchEvent claim every group; keep the kind's own definition.
			if strings.HasSuffix(name, "."+kind) {
				byGVK[av+" "+kind] = name
			}
		}
	}
	for _, k := range kinds {
		name, ok := byGVK[k]
		if !ok {
			return fmt.Errorf("no OpenAPI definition of %s", k)
		}
		schema := standalone(defs, defs[name], map[string]bool{name: true})
		b, err := json.Marshal(schema)
		if err != nil {
			return err
		}
		av, kind, _ := strings.Cut(k, " ")
		if err := os.WriteFile(filepath.Join(dir, schemaFile(av, kind)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// schemaLocation is kubeconform's template of a schema's path under dir; schemaFile gives the
// same name for a kind (apps/v1 Deployment → deployment_apps_v1.json, v1 Service →
// service_v1_v1.json).
func schemaLocation(dir string) string {
	return filepath.Join(dir, "{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json")
}

func schemaFile(apiVersion, kind string) string {
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		version = group
	}
	return strings.ToLower(kind) + "_" + group + "_" + version + ".json"
}

// standalone returns node with every $ref replaced by the definition it names (a definition that
// refers to itself, through seen, becomes {}: any value), formats dropped and the two Kubernetes
// types that take a number or a string (IntOrString, Quantity) given both.
func standalone(defs map[string]any, node any, seen map[string]bool) any {
	switch n := node.(type) {
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			out[i] = standalone(defs, v, seen)
		}
		return out
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			name := ref[strings.LastIndex(ref, "/")+1:]
			if seen[name] {
				return map[string]any{}
			}
			switch name {
			case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
				return map[string]any{"oneOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}}
			case "io.k8s.apimachinery.pkg.api.resource.Quantity":
				return map[string]any{"oneOf": []any{map[string]any{"type": "number"}, map[string]any{"type": "string"}}}
			}
			seen[name] = true
			defer delete(seen, name)
			return standalone(defs, defs[name], seen)
		}
		out := make(map[string]any, len(n)+1)
		for k, v := range n {
			switch {
			case k == "format" || strings.HasPrefix(k, "x-"):
			case k == "properties":
				props := map[string]any{}
				for p, s := range v.(map[string]any) {
					props[p] = standalone(defs, s, seen)
				}
				out[k] = props
			default:
				out[k] = standalone(defs, v, seen)
			}
		}
		if _, ok := n["properties"]; ok && n["additionalProperties"] == nil && n["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
		return out
	default:
		return node
	}
}
