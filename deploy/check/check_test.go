package check

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/yannh/kubeconform/pkg/validator"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const chartDir = "../helm/postie"

// valueSets are the ways the chart runs: the defaults (SQLite) and PostgreSQL with autoscaling.
var valueSets = map[string]map[string]any{
	"sqlite": {},
	"postgres": {
		"database":    map[string]any{"driver": "postgres", "url": "postgres://postie:secret@db:5432/postie"},
		"secrets":     map[string]any{"apiKey": "0123456789abcdef0123", "smtpURL": "smtp://u:p@relay:587", "sentryDSN": "https://k@sentry.example/1"},
		"autoscaling": map[string]any{"enabled": true},
	},
	"postgres-fixed-replicas": {
		"database":            map[string]any{"driver": "postgres"},
		"existingSecret":      "postie-keys",
		"replicaCount":        3,
		"migration":           map[string]any{"enabled": false},
		"podDisruptionBudget": map[string]any{"enabled": false},
	},
}

// object is one rendered manifest, decoded strictly into its Kubernetes Go type.
type object struct {
	kind, apiVersion, name string
	raw                    []byte
	obj                    runtime.Object
}

// render renders the chart with vals and decodes every manifest into the client-go type of its
// kind, refusing a field that type does not have.
func render(t *testing.T, vals map[string]any) (string, []object) {
	t.Helper()
	out, err := renderChart(chartDir, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var objs []object
	for doc := range strings.SplitSeq(out, "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		gv, err := schema.ParseGroupVersion(meta.APIVersion)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := scheme.Scheme.New(gv.WithKind(meta.Kind))
		if err != nil {
			t.Fatalf("%s %s: %v", meta.APIVersion, meta.Kind, err)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Errorf("%s %s does not decode strictly into its Go type: %v\n%s", meta.Kind, meta.Metadata.Name, err, doc)
		}
		objs = append(objs, object{kind: meta.Kind, apiVersion: meta.APIVersion, name: meta.Metadata.Name, raw: []byte(doc), obj: obj})
	}
	return out, objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func find[T runtime.Object](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// TestChart: what each way of running the chart renders. On SQLite exactly one replica with
// the Recreate strategy and a PersistentVolumeClaim, no autoscaler and no migration Job; on
// PostgreSQL rolling updates, the autoscaler on CPU when enabled (then no fixed replica count),
// the migration Job as a hook; and in every case probes on /healthz and /readyz, a grace period
// above POSTIE_SHUTDOWN_TIMEOUT, secrets from a Secret, a non-root read-only container and the
// metrics port annotated.
func TestChart(t *testing.T) {
	t.Parallel()
	for name, vals := range valueSets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, objs := render(t, vals)
			deps := find[*appsv1.Deployment](objs)
			if len(deps) != 1 {
				t.Fatalf("%d Deployments", len(deps))
			}
			d := deps[0]
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			env := envOf(c)
			pvcs := find[*corev1.PersistentVolumeClaim](objs)
			hpas := find[*autoscalingv2.HorizontalPodAutoscaler](objs)
			jobs := find[*batchv1.Job](objs)
			secrets := find[*corev1.Secret](objs)

			switch name {
			case "sqlite":
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
					t.Errorf("sqlite: replicas %v, strategy %q; want exactly 1 and Recreate", d.Spec.Replicas, d.Spec.Strategy.Type)
				}
				if len(pvcs) != 1 || len(pod.Volumes) != 2 || pod.Volumes[1].PersistentVolumeClaim == nil || pod.Volumes[1].PersistentVolumeClaim.ClaimName != pvcs[0].Name {
					t.Errorf("sqlite: want the PVC mounted: %d PVCs, volumes %+v", len(pvcs), pod.Volumes)
				}
				if env["POSTIE_DATABASE_URL"].Value != "sqlite:/var/lib/postie/postie.db" {
					t.Errorf("sqlite: POSTIE_DATABASE_URL = %+v", env["POSTIE_DATABASE_URL"])
				}
				if len(hpas) != 0 || len(jobs) != 0 {
					t.Errorf("sqlite: %d HPAs and %d Jobs, want none", len(hpas), len(jobs))
				}
			case "postgres":
				if d.Spec.Replicas != nil || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
					t.Errorf("postgres with autoscaling: replicas %v (want unset: the HPA sets them), strategy %q", d.Spec.Replicas, d.Spec.Strategy.Type)
				}
				if len(hpas) != 1 || hpas[0].Spec.ScaleTargetRef.Name != d.Name || len(hpas[0].Spec.Metrics) != 1 ||
					hpas[0].Spec.Metrics[0].Resource == nil || hpas[0].Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
					t.Errorf("postgres: want one HPA on the Deployment's CPU: %+v", hpas)
				}
				if len(pvcs) != 0 {
					t.Errorf("postgres: %d PVCs", len(pvcs))
				}
				if len(jobs) != 1 || jobs[0].Spec.Template.Spec.Containers[0].Args[0] != "migrate" ||
					!strings.Contains(jobs[0].Annotations["helm.sh/hook"], "pre-upgrade") {
					t.Errorf("postgres: want the migration Job as a hook: %+v", jobs)
				} else if sel := d.Spec.Selector.MatchLabels; labelsMatch(sel, jobs[0].Spec.Template.Labels) {
					t.Errorf("the migration Job's pod %v matches the server's selector %v", jobs[0].Spec.Template.Labels, sel)
				}
				// The Job reads its database URL from a hook Secret made just before it (a lower
				// hook weight), with this upgrade's values: a pre-upgrade hook runs before the
				// release's Secret is updated.
				hooked := slices.DeleteFunc(slices.Clone(secrets), func(s *corev1.Secret) bool { return s.Annotations["helm.sh/hook"] == "" })
				secrets = slices.DeleteFunc(secrets, func(s *corev1.Secret) bool { return s.Annotations["helm.sh/hook"] != "" })
				if len(secrets) != 1 || secrets[0].StringData["database-url"] == "" || secrets[0].StringData["api-key"] == "" ||
					secrets[0].StringData["smtp-url"] == "" || secrets[0].StringData["sentry-dsn"] == "" {
					t.Errorf("postgres: want the Secret with the database URL, API key, relay URL and DSN: %+v", secrets)
				}
				if len(jobs) == 1 {
					ref := jobs[0].Spec.Template.Spec.Containers[0].Env[0].ValueFrom
					if len(hooked) != 1 || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != hooked[0].Name ||
						hooked[0].StringData["database-url"] != secrets[0].StringData["database-url"] ||
						hooked[0].Annotations["helm.sh/hook"] != jobs[0].Annotations["helm.sh/hook"] ||
						hooked[0].Annotations["helm.sh/hook-weight"] >= jobs[0].Annotations["helm.sh/hook-weight"] {
						t.Errorf("the migration Job's database URL %+v is not from a hook Secret made before it: %+v", ref, hooked)
					}
				}
			case "postgres-fixed-replicas":
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 || len(hpas) != 0 || len(jobs) != 0 || len(secrets) != 0 {
					t.Errorf("replicas %v, %d HPAs, %d Jobs, %d Secrets; want 3 and none of the others", d.Spec.Replicas, len(hpas), len(jobs), len(secrets))
				}
				if ref := env["POSTIE_DATABASE_URL"].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "postie-keys" {
					t.Errorf("POSTIE_DATABASE_URL not from the existing Secret: %+v", env["POSTIE_DATABASE_URL"])
				}
			}

			for _, secret := range []string{"POSTIE_API_KEY", "POSTIE_SECRET_KEY", "POSTIE_SMTP_URL", "POSTIE_SENTRY_DSN"} {
				if e := env[secret]; e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("%s is not taken from a Secret: %+v", secret, e)
				}
			}
			timeout, err := time.ParseDuration(env["POSTIE_SHUTDOWN_TIMEOUT"].Value)
			var preStop time.Duration
			if l := c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Sleep == nil || l.PreStop.Sleep.Seconds < 1 {
				t.Errorf("lifecycle %+v, want a preStop sleep", l)
			} else {
				preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
			}
			if err != nil || pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= preStop+timeout {
				t.Errorf("terminationGracePeriodSeconds %v is not above the preStop sleep %v + POSTIE_SHUTDOWN_TIMEOUT %q", pod.TerminationGracePeriodSeconds, preStop, env["POSTIE_SHUTDOWN_TIMEOUT"].Value)
			}
			names := map[string]int{}
			for _, e := range c.Env {
				if names[e.Name]++; names[e.Name] == 2 {
					t.Errorf("%s is set twice", e.Name)
				}
			}
			// The probes ask the admin listener, whose /readyz answers 503 while the node drains.
			if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "admin" {
				t.Errorf("readiness probe %+v, want GET /readyz on the admin port", p)
			}
			for what, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "startup": c.StartupProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "admin" {
					t.Errorf("%s probe %+v, want GET /healthz on the admin port", what, p)
				}
			}
			if sc := c.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("container security context %+v", sc)
			}
			if a := d.Spec.Template.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9464" {
				t.Errorf("pod annotations %v lack the metrics port", a)
			}
			if pdbs := slices.DeleteFunc(objs, func(o object) bool { return o.kind != "PodDisruptionBudget" }); (len(pdbs) == 1) != (name != "postgres-fixed-replicas") {
				t.Errorf("%d PodDisruptionBudgets", len(pdbs))
			}
		})
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestChartRefusesBadValues: a driver the chart does not know, or PostgreSQL without a database
// URL, fails the render naming the value.
func TestChartRefusesBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"database": map[string]any{"driver": "mysql"}}, "database.driver must be sqlite or postgres"},
		{map[string]any{"database": map[string]any{"driver": "postgres"}}, "set database.url"},
		// Set twice, the variable's last value would win while the grace period follows
		// shutdownTimeoutSeconds.
		{map[string]any{"env": map[string]any{"POSTIE_SHUTDOWN_TIMEOUT": "120s"}}, "env.POSTIE_SHUTDOWN_TIMEOUT: the chart sets it"},
		{map[string]any{"env": map[string]any{"POSTIE_ADMIN_LISTEN": ":9000"}}, "env.POSTIE_ADMIN_LISTEN: the chart sets it"},
	} {
		if _, err := renderChart(chartDir, tc.vals); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("render %v: %v, want an error saying %q", tc.vals, err, tc.want)
		}
	}
}

var (
	schemasOnce sync.Once
	schemasDefs map[string]any
	schemasErr  error
)

// kubeValidator returns a kubeconform validator reading strict standalone schemas written into
// a temporary directory for kinds, made from the OpenAPI documents in the module cache.
func kubeValidator(t *testing.T, kinds []string) validator.Validator {
	t.Helper()
	schemasOnce.Do(func() {
		schemasDefs, schemasErr = kubeDefinitions(moduleDir)
	})
	if schemasErr != nil {
		t.Fatal(schemasErr)
	}
	dir := t.TempDir()
	if err := writeKubeSchemas(dir, schemasDefs, kinds); err != nil {
		t.Fatal(err)
	}
	v, err := validator.New([]string{schemaLocation(dir)}, validator.Opts{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// moduleDir is the directory of a module this module requires, in the module cache.
func moduleDir(module string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not in the module cache (go mod download %s)", module, module)
	}
	return dir, nil
}

func kindsOf(objs []object) []string {
	var kinds []string
	for _, o := range objs {
		if k := o.apiVersion + " " + o.kind; !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// TestChartManifestsValidate: every manifest the chart renders, in each way of running it,
// validates with kubeconform against the Kubernetes OpenAPI schemas, strictly (no field the
// schema lacks).
func TestChartManifestsValidate(t *testing.T) {
	t.Parallel()
	for name, vals := range valueSets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, objs := render(t, vals)
			v := kubeValidator(t, kindsOf(objs))
			results := v.Validate(name+".yaml", io.NopCloser(strings.NewReader(out)))
			valid := 0
			for _, r := range results {
				switch r.Status {
				case validator.Valid:
					valid++
				case validator.Empty:
				default:
					t.Errorf("%s %s: status %d: %v %+v", r.Resource.Path, resourceName(r), r.Status, r.Err, r.ValidationErrors)
				}
			}
			if valid != len(objs) {
				t.Errorf("%d manifests valid of %d rendered", valid, len(objs))
			}
		})
	}
}

func resourceName(r validator.Result) string {
	sig, err := r.Resource.Signature()
	if err != nil {
		return "?"
	}
	return sig.Kind + " " + sig.Name
}

// TestKubeValidatorCatches: the schemas made here do refuse what a cluster refuses: a misspelt
// field, a wrong type, a field in the wrong place, and an unknown kind (no schema).
func TestKubeValidatorCatches(t *testing.T) {
	t.Parallel()
	_, objs := render(t, valueSets["sqlite"])
	var dep string
	for _, o := range objs {
		if o.kind == "Deployment" {
			dep = string(o.raw)
		}
	}
	v := kubeValidator(t, kindsOf(objs))
	for _, tc := range []struct{ name, from, to string }{
		{"misspelt field", "\n  replicas: 1", "\n  replica: 1"},
		{"wrong type", "\n  replicas: 1", "\n  replicas: one"},
		{"misplaced field", "\n  replicas: 1", "\n  replicas: 1\n  containers: []"},
		{"unknown kind", "kind: Deployment", "kind: Deploymnet"},
	} {
		bad := strings.Replace(dep, tc.from, tc.to, 1)
		if bad == dep {
			t.Fatalf("%s: %q not in the Deployment:\n%s", tc.name, tc.from, dep)
		}
		r := v.Validate("bad.yaml", io.NopCloser(strings.NewReader(bad)))
		if len(r) != 1 || r[0].Status == validator.Valid {
			t.Errorf("%s: validated: %+v", tc.name, r)
		}
	}
}

// TestCompose: deploy/compose.yaml loads with the compose-spec loader (what docker compose
// uses): PostgreSQL, the migration, and two postie nodes on it with distinct node ids, each
// starting after the migration and stopped with more grace than POSTIE_SHUTDOWN_TIMEOUT; and
// it refuses to load without the passwords it needs. `docker compose config` checks it too
// where Compose is installed.
func TestCompose(t *testing.T) {
	t.Parallel()
	env := []string{"POSTGRES_PASSWORD=pw", "POSTIE_API_KEY=0123456789abcdef0123"}
	load := func(env []string) (*types.Project, error) {
		opts, err := cli.NewProjectOptions([]string{"../compose.yaml"}, cli.WithEnv(env), cli.WithName("postie"))
		if err != nil {
			return nil, err
		}
		p, err := opts.LoadProject(context.Background())
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	p, err := load(env)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(p.Services)); !slices.Equal(got, []string{"migrate", "postgres", "postie-1", "postie-2"}) {
		t.Fatalf("services %v", got)
	}
	if c := p.Services["migrate"].Command; !slices.Equal(c, []string{"migrate"}) {
		t.Errorf("migrate runs %v", c)
	}
	if p.Services["migrate"].DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("migrate does not wait for PostgreSQL to be healthy")
	}
	ids := map[string]bool{}
	for _, n := range []string{"postie-1", "postie-2"} {
		s := p.Services[n]
		if s.DependsOn["migrate"].Condition != "service_completed_successfully" {
			t.Errorf("%s does not wait for the migration", n)
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= 30*time.Second {
			t.Errorf("%s: stop_grace_period %v, want above POSTIE_SHUTDOWN_TIMEOUT (30s)", n, s.StopGracePeriod)
		}
		if u := s.Environment["POSTIE_DATABASE_URL"]; u == nil || !strings.HasPrefix(*u, "postgres://postie:pw@postgres:5432/") {
			t.Errorf("%s: POSTIE_DATABASE_URL %v", n, u)
		}
		if id := s.Environment["POSTIE_NODE_ID"]; id == nil || ids[*id] {
			t.Errorf("%s: POSTIE_NODE_ID missing or shared", n)
		} else {
			ids[*id] = true
		}
		if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: build %+v", n, s.Build)
		}
	}
	if _, err := load(env[:1]); err == nil || !strings.Contains(err.Error(), "POSTIE_API_KEY") {
		t.Errorf("loaded without POSTIE_API_KEY: %v", err)
	}

	if exec.Command("docker", "compose", "version").Run() != nil {
		t.Log("docker compose is not installed: the loader's check only")
		return
	}
	cmd := exec.Command("docker", "compose", "-f", "../compose.yaml", "config", "--quiet")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
	}
}

// TestSystemdUnit: deploy/systemd/postie.service waits for postie's READY=1 (Type=notify),
// sandboxes it, raises its descriptor limit and gives a stop more time than
// POSTIE_SHUTDOWN_TIMEOUT; systemd-analyze verify accepts it where systemd is installed.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	const path = "../systemd/postie.service"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = append(unit[k], v)
		}
	}
	for k, want := range map[string]string{
		"Type": "notify", "ProtectSystem": "strict", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
		"DynamicUser": "yes", "StateDirectory": "postie", "ReadWritePaths": "/var/lib/postie",
		"LimitNOFILE": "65536", "ExecStart": "/usr/local/bin/postie serve", "KillSignal": "SIGTERM",
	} {
		if !slices.Contains(unit[k], want) {
			t.Errorf("%s=%v, want %s", k, unit[k], want)
		}
	}
	if stop, err := time.ParseDuration(strings.Join(unit["TimeoutStopSec"], "")); err != nil || stop <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%v, want above POSTIE_SHUTDOWN_TIMEOUT (30s)", unit["TimeoutStopSec"])
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: not verified by systemd")
		return
	}
	// verify wants ExecStart's program to exist: point it at one that does.
	tmp := filepath.Join(t.TempDir(), "postie.service")
	if err := os.WriteFile(tmp, bytes.ReplaceAll(b, []byte("/usr/local/bin/postie"), []byte("/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", tmp).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var goDirective = regexp.MustCompile(`(?m)^go (\S+)$`)

// TestDockerfile: deploy/Dockerfile builds with the Go release of postie's go.mod, on a
// distroless base, as a non-root user, with a HEALTHCHECK that runs postie healthcheck (the
// image has no shell). Where a container engine answers it builds the image; elsewhere that
// part is skipped, saying why.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goDirective.FindSubmatch(gomod)[1]
	for _, want := range []string{
		"ARG GO_VERSION=" + string(goVersion) + "\n",
		"CGO_ENABLED=0 go build",
		"FROM gcr.io/distroless/static-debian12:nonroot\n",
		"USER 65532:65532\n",
		`CMD ["/usr/local/bin/postie", "healthcheck"`,
		`ENTRYPOINT ["/usr/local/bin/postie"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}

	engine := ""
	for _, e := range []string{"docker", "podman"} {
		if _, err := exec.LookPath(e); err == nil {
			if out, err := exec.Command(e, "info").CombinedOutput(); err == nil {
				engine = e
				break
			} else if engine == "" {
				t.Logf("%s info: %v: %s", e, err, lastLine(out))
			}
		}
	}
	if engine == "" {
		t.Skip("no container engine answers (docker or podman info): the image is not built")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	tag := fmt.Sprintf("postie-check:%d", time.Now().UnixNano())
	cmd := exec.CommandContext(ctx, engine, "build", "-f", "deploy/Dockerfile", "-t", tag, ".")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s build: %v\n%s", engine, err, out)
	}
	defer func() { _ = exec.Command(engine, "rmi", tag).Run() }()
	if out, err := exec.Command(engine, "run", "--rm", tag, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "postie ") {
		t.Errorf("%s run %s version: %v\n%s", engine, tag, err, out)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
