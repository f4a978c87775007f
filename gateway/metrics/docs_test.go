package metrics

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoFile reads a file of the repository from this package's directory.
func repoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var metricName = regexp.MustCompile(`\brbdgw_[a-z_]+[a-z]\b`)

// families are the rbdgw metric names a busy gateway exports.
func families(t *testing.T) map[string]bool {
	got := map[string]bool{}
	for s := range parseScrape(t, scrape(t, Handler(busyRegistry(), nil))) {
		name := s.name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(name, suffix) && strings.Contains(name, "duration_seconds") {
				name = strings.TrimSuffix(name, suffix)
			}
		}
		if strings.HasPrefix(name, "rbdgw_") {
			got[name] = true
		}
	}
	return got
}

// docs/metrics.md lists every metric, and the rules and the dashboard
// use no metric that does not exist.
func TestMetricsDocumented(t *testing.T) {
	fams := families(t)
	if len(fams) < 25 {
		t.Fatalf("only %d metric families", len(fams))
	}
	doc := repoFile(t, "docs/metrics.md")
	for name := range fams {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/metrics.md does not list %s", name)
		}
	}
	known := func(name string) bool {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if fams[strings.TrimSuffix(name, suffix)] && strings.HasSuffix(name, suffix) {
				return true
			}
		}
		return false
	}
	for _, path := range []string{"docs/metrics.md", "deploy/prometheus/rbdgw-rules.yml", "deploy/prometheus/rbdgw-rules.test.yml", "deploy/grafana/rbdgw-dashboard.json"} {
		for _, name := range metricName.FindAllString(repoFile(t, path), -1) {
			if !known(name) {
				t.Errorf("%s uses %s, which the gateway does not export", path, name)
			}
		}
	}
}

// promtool accepts the alert rules and their unit tests pass.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	dir := filepath.Join("..", "..", "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "rbdgw-rules.yml"},
		{"test", "rules", "rbdgw-rules.test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
}
