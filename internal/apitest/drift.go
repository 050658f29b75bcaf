package apitest

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var endpoint = regexp.MustCompile(`(?:^|[\s,|])(GET|POST|PUT|DELETE|PATCH)\s+(/[^\s?,"]*)`)

// MarkdownOps lists the endpoints ("METHOD /path") written in the fenced
// code blocks of a Markdown document, under headings whose text contains
// section ("" for all). Query strings are left out; a line may hold more
// than one endpoint.
func MarkdownOps(md []byte, section string) []string {
	var out []string
	in, fenced := section == "", false
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if !fenced && strings.HasPrefix(line, "#") {
			if section != "" {
				in = strings.Contains(line, section)
			}
			continue
		}
		if !fenced || !in || strings.Contains(line, "curl ") {
			continue
		}
		for _, m := range endpoint.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1]+" "+strings.TrimRight(m[2], ".:;)"))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Diff compares two endpoint lists; "" when they hold the same set.
func Diff(docName string, doc []string, otherName string, other []string) string {
	var b strings.Builder
	for _, op := range sorted(doc) {
		if !slices.Contains(other, op) {
			fmt.Fprintf(&b, "\n\t%s is in %s, not in %s", op, docName, otherName)
		}
	}
	for _, op := range sorted(other) {
		if !slices.Contains(doc, op) {
			fmt.Fprintf(&b, "\n\t%s is in %s, not in %s", op, otherName, docName)
		}
	}
	return b.String()
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// PendingOps lists the operations marked x-spacepanda-pending (another
// branch adds them), as "METHOD /path" → the branch.
func (d *Doc) PendingOps() map[string]string {
	out := map[string]string{}
	for path, item := range d.T.Paths.Map() {
		for method, op := range item.Operations() {
			if v, ok := op.Extensions["x-spacepanda-pending"].(string); ok {
				out[method+" "+path] = v
			}
		}
	}
	return out
}
