package loadtest

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
)

// startBusy reads the machine's CPU counters; the function it returns is
// the share of the time since that the CPUs were busy (all processes, in
// percent, not idle nor waiting for I/O), false where /proc/stat is not
// there. Near 100 % every latency of a run is mostly waiting for a CPU.
func startBusy() func() (float64, bool) {
	b0, t0, err0 := readProcStat("/proc/stat")
	return func() (float64, bool) {
		b1, t1, err := readProcStat("/proc/stat")
		if err0 != nil || err != nil || t1 <= t0 {
			return 0, false
		}
		return round(100 * float64(b1-b0) / float64(t1-t0)), true
	}
}

// readProcStat returns the busy and total ticks of all CPUs.
func readProcStat(path string) (busy, total uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(b)
}

var errProcStat = errors.New("loadtest: /proc/stat: no cpu line")

// parseProcStat reads the first line, "cpu user nice system idle iowait
// irq softirq steal ...": idle and iowait are not busy; steal (time the
// hypervisor gave to others) and the guest times (inside user already)
// are not counted.
func parseProcStat(b []byte) (busy, total uint64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, errProcStat
	}
	for i, s := range f[1:min(len(f), 8)] { // user .. softirq
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, errors.Join(errProcStat, err)
		}
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total, nil
}
