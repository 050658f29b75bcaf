package loadtest

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Plot writes res's deliveries to path as an SVG or a PNG (by extension):
// on the left latency over time (one dot per delivery), on the right the
// distribution of latencies (a histogram) with p50 and p99 marked.
func Plot(res *Result, path string) error {
	var data []byte
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		data = plotSVG(res)
	case ".png":
		var err error
		if data, err = plotPNG(res); err != nil {
			return err
		}
	default:
		return fmt.Errorf("loadtest: plot: %s: the file must end in .svg or .png", path)
	}
	return os.WriteFile(path, data, 0o644)
}

const (
	plotW, plotH = 900, 360
	panelW       = 400
	margin       = 50
)

// layout maps samples to the two panels' pixel coordinates.
type layout struct {
	tMax, yMax float64
	bins       []int
	binMax     int
}

func newLayout(res *Result) layout {
	l := layout{tMax: max(res.DurationS, 1), bins: make([]int, 40)}
	// The y range: the p99 with room above it (rare outliers clipped).
	l.yMax = max(res.P99*1.5, res.P50*2, 1)
	for _, s := range res.Samples {
		b := int(s.Ms / l.yMax * float64(len(l.bins)))
		b = min(max(b, 0), len(l.bins)-1)
		l.bins[b]++
		l.binMax = max(l.binMax, l.bins[b])
	}
	return l
}

// dot is the left panel's position of a sample.
func (l layout) dot(s Sample) (x, y float64) {
	x = margin + s.At/l.tMax*panelW
	y = plotH - margin - math.Min(s.Ms/l.yMax, 1)*(plotH-2*margin)
	return
}

// bar is the right panel's rectangle of bin i.
func (l layout) bar(i int) (x, y, w, h float64) {
	x0 := float64(2*margin + panelW)
	w = float64(panelW) / float64(len(l.bins))
	h = 0
	if l.binMax > 0 {
		h = float64(l.bins[i]) / float64(l.binMax) * (plotH - 2*margin)
	}
	return x0 + float64(i)*w, plotH - margin - h, w - 1, h
}

// label is a text of the plot: at (x, y), the baseline's left end (or its
// right end: end), in red when mark.
type label struct {
	x, y      int
	text      string
	end, mark bool
}

// labels are the plot's texts, for both formats: the run, the panels'
// titles, the axes' ranges, p50 and p99.
func (l layout) labels(res *Result) []label {
	ls := []label{
		{x: margin, y: 20, text: fmt.Sprintf("%s, %s, %d clients: %.0f posts/s, %.0f delivered/s, p50 %.1f ms, p99 %.1f ms",
			res.Mode, res.Backend, res.Clients, res.PostsPS, res.DeliverPS, res.P50, res.P99)},
		{x: margin, y: margin - 8, text: "latency (ms) over time (s)"},
		{x: 2*margin + panelW, y: margin - 8, text: "distribution of latency (ms)"},
		{x: margin - 4, y: margin + 4, text: fmt.Sprintf("%.0f", l.yMax), end: true},
		{x: margin - 4, y: plotH - margin, text: "0", end: true},
		{x: margin + panelW, y: plotH - margin + 16, text: fmt.Sprintf("%.0f", l.tMax), end: true},
		{x: 2*margin + 2*panelW, y: plotH - margin + 16, text: fmt.Sprintf("%.0f", l.yMax), end: true},
	}
	for _, p := range l.marks(res) {
		ls = append(ls, label{x: p.x + 3, y: margin + 12, text: p.name, mark: true})
	}
	return ls
}

type mark struct {
	name string
	x    int
}

// marks are the right panel's p50 and p99 lines.
func (l layout) marks(res *Result) []mark {
	var out []mark
	for _, p := range []struct {
		name string
		v    float64
	}{{"p50", res.P50}, {"p99", res.P99}} {
		out = append(out, mark{p.name, 2*margin + panelW + int(math.Min(p.v/l.yMax, 1)*panelW)})
	}
	return out
}

func plotSVG(res *Result) []byte {
	l := newLayout(res)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	// Axes.
	for _, x0 := range []int{margin, 2*margin + panelW} {
		fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" stroke="black" fill="none"/>`+"\n", x0, margin, plotH-margin, x0+panelW)
	}
	b.WriteString(`<g fill="steelblue" fill-opacity="0.5">` + "\n")
	for _, s := range thin(res.Samples, 20000) {
		x, y := l.dot(s)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="1.5"/>`+"\n", x, y)
	}
	b.WriteString("</g>\n<g fill=\"steelblue\">\n")
	for i := range l.bins {
		x, y, w, h := l.bar(i)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`+"\n", x, y, w, h)
	}
	b.WriteString("</g>\n")
	for _, m := range l.marks(res) {
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="crimson"/>`+"\n", m.x, margin, m.x, plotH-margin)
	}
	for _, t := range l.labels(res) {
		attrs := ""
		if t.end {
			attrs += ` text-anchor="end"`
		}
		if t.mark {
			attrs += ` fill="crimson"`
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d"%s>%s</text>`+"\n", t.x, t.y, attrs, html.EscapeString(t.text))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// thin keeps at most n samples, evenly spaced.
func thin(s []Sample, n int) []Sample {
	if len(s) <= n {
		return s
	}
	out := make([]Sample, 0, n)
	for i := range n {
		out = append(out, s[i*len(s)/n])
	}
	return out
}

func plotPNG(res *Result) ([]byte, error) {
	l := newLayout(res)
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	black := color.RGBA{0, 0, 0, 255}
	blue := color.RGBA{70, 130, 180, 255}
	red := color.RGBA{220, 20, 60, 255}
	for _, x0 := range []int{margin, 2*margin + panelW} {
		fill(img, image.Rect(x0, margin, x0+1, plotH-margin), black)
		fill(img, image.Rect(x0, plotH-margin, x0+panelW, plotH-margin+1), black)
	}
	for _, s := range thin(res.Samples, 50000) {
		x, y := l.dot(s)
		fill(img, image.Rect(int(x)-1, int(y)-1, int(x)+1, int(y)+1), blue)
	}
	for i := range l.bins {
		x, y, w, h := l.bar(i)
		fill(img, image.Rect(int(x), int(y), int(x+w), int(y+h)), blue)
	}
	for _, m := range l.marks(res) {
		fill(img, image.Rect(m.x, margin, m.x+1, plotH-margin), red)
	}
	face := basicfont.Face7x13
	for _, t := range l.labels(res) {
		d := &font.Drawer{Dst: img, Src: image.NewUniform(black), Face: face}
		if t.mark {
			d.Src = image.NewUniform(red)
		}
		x := fixed.I(t.x)
		if t.end {
			x -= d.MeasureString(t.text)
		}
		d.Dot = fixed.Point26_6{X: x, Y: fixed.I(t.y)}
		d.DrawString(t.text)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}
