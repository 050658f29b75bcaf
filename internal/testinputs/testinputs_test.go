package testinputs

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHelperMissing is run as a child process by TestMissing.
func TestHelperMissing(t *testing.T) {
	if os.Getenv("TESTINPUTS_CHILD") != "1" {
		t.Skip("run by TestMissing")
	}
	Missing(t, "pkg", "thing not found at /x; set THING (see README)")
}

func TestMissing(t *testing.T) {
	for _, c := range []struct {
		ci       string
		fails    bool
		contains string
	}{
		{"true", true, "pkg: thing not found at /x; set THING (see README) (CI=true: required)"},
		{"", false, "pkg: thing not found at /x; set THING (see README)"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMissing$", "-test.v")
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "TESTINPUTS_CHILD=1", "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fails {
			t.Errorf("CI=%q: err %v, want failure %v:\n%s", c.ci, err, c.fails, out)
		}
		if !strings.Contains(string(out), c.contains) {
			t.Errorf("CI=%q: output lacks %q:\n%s", c.ci, c.contains, out)
		}
		if !c.fails {
			if _, err := os.Stat(cmd.Dir + "/" + marker); err != nil {
				t.Errorf("no cache marker: %v", err)
			}
		}
	}
}
