package loadtest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
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

func plotSVG(res *Result) []byte {
	l := newLayout(res)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20">%s, %s, %d clients: %.0f posts/s, %.0f delivered/s, p50 %.1f ms, p99 %.1f ms</text>`+"\n",
		margin, res.Mode, res.Backend, res.Clients, res.PostsPS, res.DeliverPS, res.P50, res.P99)
	// Axes.
	for _, x0 := range []int{margin, 2*margin + panelW} {
		fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" stroke="black" fill="none"/>`+"\n", x0, margin, plotH-margin, x0+panelW)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">latency (ms) over time (s)</text>`+"\n", margin, margin-8)
	fmt.Fprintf(&b, `<text x="%d" y="%d">distribution of latency (ms)</text>`+"\n", 2*margin+panelW, margin-8)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.0f</text>`+"\n", margin-4, margin+4, l.yMax)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">0</text>`+"\n", margin-4, plotH-margin)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.0f</text>`+"\n", margin+panelW, plotH-margin+16, l.tMax)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.0f</text>`+"\n", 2*margin+2*panelW, plotH-margin+16, l.yMax)
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
	for _, p := range []struct {
		name string
		v    float64
	}{{"p50", res.P50}, {"p99", res.P99}} {
		x := float64(2*margin+panelW) + math.Min(p.v/l.yMax, 1)*panelW
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="crimson"/><text x="%.1f" y="%d" fill="crimson">%s</text>`+"\n",
			x, margin, x, plotH-margin, x+3, margin+12, p.name)
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
	for _, v := range []float64{res.P50, res.P99} {
		x := 2*margin + panelW + int(math.Min(v/l.yMax, 1)*panelW)
		fill(img, image.Rect(x, margin, x+1, plotH-margin), red)
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
