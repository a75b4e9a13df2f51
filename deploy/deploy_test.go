// Package deploy holds the deployment files (systemd, container,
// Kubernetes); this test parses each and checks that its probes, ports,
// commands and timings match what the gateway does.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
)

// manifests parses every YAML document under kubernetes/, by kind.
func manifests(t *testing.T) map[string][]map[string]any {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string][]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind, _ := doc["kind"].(string)
			if kind == "" || doc["apiVersion"] == nil {
				t.Fatalf("%s: a document without kind or apiVersion", f)
			}
			if kind != "Kustomization" && get(doc, "metadata", "name") == nil {
				t.Fatalf("%s: %s without metadata.name", f, kind)
			}
			if filepath.Base(f) == "etcd-dataplane.yaml" {
				kind = "Patch"
			}
			doc["_file"] = f
			out[kind] = append(out[kind], doc)
		}
	}
	return out
}

// get walks nested maps and lists (an int key indexes a list).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func one(t *testing.T, docs map[string][]map[string]any, kind string) map[string]any {
	t.Helper()
	if len(docs[kind]) != 1 {
		t.Fatalf("want one %s, have %d", kind, len(docs[kind]))
	}
	return docs[kind][0]
}

func port(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func TestKubernetes(t *testing.T) {
	docs := manifests(t)
	cm := one(t, docs, "ConfigMap")
	dep := one(t, docs, "Deployment")
	svc := one(t, docs, "Service")
	pdb := one(t, docs, "PodDisruptionBudget")
	hpa := one(t, docs, "HorizontalPodAutoscaler")

	// The ConfigMap's config is one the gateway accepts.
	raw, _ := get(cm, "data", "rampart.yaml").(string)
	cfg, err := config.LoadBytes("configmap.yaml:rampart.yaml", []byte(raw))
	if err != nil {
		t.Fatalf("the ConfigMap's config is refused:\n%v", err)
	}
	adminPort := port(t, cfg.Admin.Address)
	if adminPort != port(t, config.DefaultAdminAddress) {
		t.Errorf("admin port %d differs from the default %s", adminPort, config.DefaultAdminAddress)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Address); host != "0.0.0.0" {
		t.Errorf("admin.address %q: the kubelet's probes need 0.0.0.0", cfg.Admin.Address)
	}
	httpPort := port(t, cfg.Listeners[0].Address)

	spec := get(dep, "spec", "template", "spec")
	c := get(spec, "containers", 0)
	ports := map[string]int{}
	for _, p := range get(c, "ports").([]any) {
		ports[get(p, "name").(string)] = get(p, "containerPort").(int)
	}
	if ports["admin"] != adminPort || ports["http"] != httpPort {
		t.Errorf("container ports %v, want http %d and admin %d from the config", ports, httpPort, adminPort)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/readyz"} {
		if got := get(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %v, want %s", probe, got, path)
		}
		if got := get(c, probe, "httpGet", "port"); got != "admin" {
			t.Errorf("%s port %v, want the admin port", probe, got)
		}
	}
	// preStop: `rampart drain` against the admin port on loopback.
	cmd := get(c, "lifecycle", "preStop", "exec", "command").([]any)
	if len(cmd) < 2 || cmd[0] != "/rampart" || cmd[1] != "drain" {
		t.Errorf("preStop %v, want /rampart drain ...", cmd)
	}
	i := slices.Index(cmd, any("--admin"))
	if i < 0 || i+1 >= len(cmd) || port(t, cmd[i+1].(string)) != adminPort || !strings.HasPrefix(cmd[i+1].(string), "127.0.0.1:") {
		t.Errorf("preStop %v: want --admin 127.0.0.1:%d (mutating calls need loopback)", cmd, adminPort)
	}
	// The grace period covers drain_delay + drain_timeout.
	grace := get(spec, "terminationGracePeriodSeconds").(int)
	need := (cfg.DrainDelay.D() + cfg.DrainTimeout.D()).Seconds()
	if float64(grace) <= need {
		t.Errorf("terminationGracePeriodSeconds %d, want more than drain_delay + drain_timeout = %.0fs", grace, need)
	}
	if w := slices.Index(cmd, any("--wait")); w < 0 || w+1 >= len(cmd) {
		t.Errorf("preStop %v has no --wait", cmd)
	}
	// The container runs the mounted config as non-root.
	args := get(c, "args").([]any)
	if len(args) < 3 || args[0] != "run" || args[1] != "-c" || !strings.HasPrefix(args[2].(string), "/etc/rampart/") {
		t.Errorf("args %v, want run -c /etc/rampart/...", args)
	}
	if get(spec, "securityContext", "runAsNonRoot") != true || get(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("the pod must run as non-root with a read-only root filesystem")
	}
	var cmName any
	for _, v := range get(spec, "volumes").([]any) {
		if get(v, "name") == "config" {
			cmName = get(v, "configMap", "name")
		}
	}
	if cmName != get(cm, "metadata", "name") {
		t.Errorf("config volume names ConfigMap %v, want %v", cmName, get(cm, "metadata", "name"))
	}
	// Selectors and references agree.
	labels := get(dep, "spec", "template", "metadata", "labels").(map[string]any)
	for name, sel := range map[string]any{
		"Deployment":          get(dep, "spec", "selector", "matchLabels"),
		"Service":             get(svc, "spec", "selector"),
		"PodDisruptionBudget": get(pdb, "spec", "selector", "matchLabels"),
	} {
		for k, v := range sel.(map[string]any) {
			if labels[k] != v {
				t.Errorf("%s selector %s=%v does not match the pod labels %v", name, k, v, labels)
			}
		}
	}
	if get(svc, "spec", "ports", 0, "targetPort") != "http" {
		t.Errorf("Service targetPort %v, want http", get(svc, "spec", "ports", 0, "targetPort"))
	}
	if get(hpa, "spec", "scaleTargetRef", "name") != get(dep, "metadata", "name") || get(hpa, "spec", "scaleTargetRef", "kind") != "Deployment" {
		t.Errorf("HPA targets %v", get(hpa, "spec", "scaleTargetRef"))
	}
	if get(hpa, "spec", "metrics", 0, "resource", "name") != "cpu" {
		t.Errorf("HPA does not scale on CPU")
	}
	if min := get(hpa, "spec", "minReplicas").(int); min < 2 {
		t.Errorf("HPA minReplicas %d: at least 2 for active-active", min)
	}
	// The etcd data-plane patch names the same container and an etcd source.
	p := one(t, docs, "Patch")
	pc := get(p, "spec", "template", "spec", "containers", 0)
	pargs := get(pc, "args").([]any)
	if get(pc, "name") != get(c, "name") || len(pargs) < 3 || !strings.HasPrefix(pargs[2].(string), "etcd://") {
		t.Errorf("etcd patch container %v args %v", get(pc, "name"), pargs)
	}
	// The kustomization lists every manifest but the optional patch.
	k := one(t, docs, "Kustomization")
	var listed []string
	for _, r := range get(k, "resources").([]any) {
		listed = append(listed, r.(string))
	}
	for kind, ds := range docs {
		for _, d := range ds {
			f := filepath.Base(d["_file"].(string))
			if kind != "Kustomization" && kind != "Patch" && !slices.Contains(listed, f) {
				t.Errorf("kustomization.yaml does not list %s", f)
			}
		}
	}
}

// unit parses a systemd unit file: section -> key -> values.
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	u := unit(t, "systemd/rampart.service")
	svc := u["Service"]
	want := map[string]string{
		"Type":            "notify",
		"NotifyAccess":    "all",
		"ExecReload":      "/bin/kill -HUP $MAINPID",
		"KillSignal":      "SIGTERM",
		"NoNewPrivileges": "true",
		"ProtectSystem":   "strict",
	}
	for k, v := range want {
		if got := svc[k]; len(got) != 1 || got[0] != v {
			t.Errorf("[Service] %s = %v, want %s", k, got, v)
		}
	}
	start := svc["ExecStart"]
	if len(start) != 1 || !strings.Contains(start[0], "rampart run -c /etc/rampart/rampart.yaml") {
		t.Errorf("ExecStart %v", start)
	}
	if pre := svc["ExecStartPre"]; len(pre) != 1 || !strings.Contains(pre[0], "rampart validate -c /etc/rampart/rampart.yaml") {
		t.Errorf("ExecStartPre %v: want the config validated first", pre)
	}
	if n, err := strconv.Atoi(strings.Join(svc["LimitNOFILE"], "")); err != nil || n < 65536 {
		t.Errorf("LimitNOFILE %v, want at least 65536", svc["LimitNOFILE"])
	}
	// TimeoutStopSec covers the default drain_timeout.
	stop := strings.TrimSuffix(strings.Join(svc["TimeoutStopSec"], ""), "s")
	if n, err := strconv.Atoi(stop); err != nil || float64(n) <= config.DefaultDrainTimeout.D().Seconds() {
		t.Errorf("TimeoutStopSec %v, want more than drain_timeout's default %s", svc["TimeoutStopSec"], config.DefaultDrainTimeout.D())
	}
	// The etcd cache lands in the StateDirectory (source.DefaultCacheDir
	// is $XDG_STATE_HOME/rampart).
	if !slices.Contains(svc["Environment"], "XDG_STATE_HOME=/var/lib") || !slices.Contains(svc["StateDirectory"], "rampart") {
		t.Errorf("Environment %v, StateDirectory %v: the etcd cache must be writable", svc["Environment"], svc["StateDirectory"])
	}
	if len(u["Install"]["WantedBy"]) == 0 {
		t.Errorf("no [Install] WantedBy")
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	var static bool
	var entry, expose string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		case "ENV":
			static = static || strings.Contains(line, "CGO_ENABLED=0")
		case "ENTRYPOINT":
			entry = strings.Join(f[1:], " ")
		case "EXPOSE":
			expose = strings.Join(f[1:], " ")
		}
	}
	if len(froms) < 2 || !(strings.HasPrefix(froms[len(froms)-1], "gcr.io/distroless/static") || froms[len(froms)-1] == "scratch") {
		t.Errorf("final stage FROM %v, want distroless static or scratch", froms)
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("USER %v, want a non-root user", users)
	}
	if !static {
		t.Errorf("the build does not set CGO_ENABLED=0 (a static binary)")
	}
	if entry != `["/rampart"]` {
		t.Errorf("ENTRYPOINT %s", entry)
	}
	if want := "8080 " + strconv.Itoa(port(t, config.DefaultAdminAddress)); expose != want {
		t.Errorf("EXPOSE %q, want %q", expose, want)
	}
	if !strings.Contains(string(b), "GOTOOLCHAIN=go1.27.3") {
		t.Errorf("the build stage must pin GOTOOLCHAIN=go1.27.3, as go.mod needs")
	}
}
