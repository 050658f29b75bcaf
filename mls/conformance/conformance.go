// Package conformance runs the official MLS test vectors (RFC 9420 interop
// test vectors, formats in shared/spec/test-vectors.md) against this
// implementation. The go tests and `spacepanda conformance` call the same code.
package conformance

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// caseResult is the outcome of one test case in a vector file.
type caseResult struct {
	Name string // e.g. "suite 1 #0"
	Err  error  // nil on success
}

// vectorKind runs one vector file. Run returns one Result per test case; an error
// means the file could not be read as this kind at all.
type vectorKind struct {
	File string
	Run  func(data []byte) ([]caseResult, error) // nil: not implemented yet
	Why  string                                  // why it is skipped when Run is nil
}

// kinds lists every vector kind this implementation knows, in file-name order.
func kinds() []vectorKind {
	ks := []vectorKind{
		{File: "crypto-basics.json", Run: runCases[cryptoBasicsCase]},
		{File: "tree-math.json", Run: runTreeMath},
		{File: "deserialization.json", Run: runCases[deserializationCase]},
		{File: "secret-tree.json", Run: runCases[secretTreeCase]},
		{File: "key-schedule.json", Run: runCases[keyScheduleCase]},
		{File: "psk_secret.json", Run: runCases[pskSecretCase]},
		{File: "transcript-hashes.json", Run: runCases[transcriptCase]},
		{File: "message-protection.json", Run: runCases[messageProtectionCase]},
		{File: "messages.json", Run: runCases[messagesCase]},
		{File: "tree-operations.json", Run: runCases[treeOperationsCase]},
		{File: "tree-validation.json", Run: runCases[treeValidationCase]},
		{File: "treekem.json", Run: runCases[treeKEMCase]},
		{File: "welcome.json", Run: runCases[welcomeCase]},
		{File: "passive-client-welcome.json", Run: runCases[passiveClientCase]},
		{File: "passive-client-handling-commit.json", Run: runCases[passiveClientCase]},
		{File: "passive-client-random.json", Run: runCases[passiveClientCase]},
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].File < ks[j].File })
	return ks
}

// fileReport summarises one file.
type fileReport struct {
	File    string
	Skipped string // non-empty: why the file was skipped
	Results []caseResult
	Err     error // the file could not be run at all
}

// Passed counts successful cases.
func (r fileReport) Passed() int {
	n := 0
	for _, c := range r.Results {
		if c.Err == nil {
			n++
		}
	}
	return n
}

// Failed counts failed cases (a file that could not run counts as one).
func (r fileReport) Failed() int {
	n := len(r.Results) - r.Passed()
	if r.Err != nil {
		n++
	}
	return n
}

// FirstFailure returns the first failing case, formatted.
func (r fileReport) FirstFailure() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	for _, c := range r.Results {
		if c.Err != nil {
			return c.Name + ": " + c.Err.Error()
		}
	}
	return ""
}

// runFile runs one kind against the file of that name in dir.
func runFile(dir string, k vectorKind) fileReport {
	rep := fileReport{File: k.File}
	if k.Run == nil {
		rep.Skipped = k.Why
		return rep
	}
	data, err := os.ReadFile(filepath.Join(dir, k.File))
	if errors.Is(err, os.ErrNotExist) {
		rep.Skipped = "file not present"
		return rep
	}
	if err != nil {
		rep.Err = err
		return rep
	}
	rep.Results, rep.Err = k.Run(data)
	return rep
}

// RunDir runs every known kind in dir and writes one line per file and a
// total line to w. It returns the number of passed and failed cases.
func RunDir(dir string, w io.Writer) (passed, failed int) {
	for _, k := range kinds() {
		rep := runFile(dir, k)
		switch {
		case rep.Skipped != "":
			fmt.Fprintf(w, "skip %s: %s\n", rep.File, rep.Skipped)
		case rep.Failed() == 0:
			fmt.Fprintf(w, "PASS %s %d/%d\n", rep.File, rep.Passed(), len(rep.Results))
		default:
			total := len(rep.Results)
			if rep.Err != nil {
				total++
			}
			fmt.Fprintf(w, "FAIL %s %d/%d: %s\n", rep.File, rep.Passed(), total, rep.FirstFailure())
		}
		passed += rep.Passed()
		failed += rep.Failed()
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return passed, failed
}
