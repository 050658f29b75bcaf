package loadtest

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"
)

// TestPlotLabels: both plots carry the run's figures and their axes'
// ranges as text (the PNG's drawn in its pixels: a reader of the image
// must not have to guess what the dots mean), and the SVG escapes them.
func TestPlotLabels(t *testing.T) {
	res := &Result{Mode: "end-to-end", Backend: "<sqlite>", Clients: 20, PostsPS: 600, DeliverPS: 1200, P50: 100, P99: 240, DurationS: 12,
		Samples: []Sample{{At: 1, Ms: 90}, {At: 6, Ms: 120}, {At: 11, Ms: 240}}}
	svg := string(plotSVG(res))
	for _, want := range []string{"&lt;sqlite&gt;, 20 clients", "p99 240.0 ms", "latency (ms) over time (s)", ">360<", ">12<", ">p50<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(svg, "<sqlite>") {
		t.Error("SVG holds the backend's name unescaped")
	}
	b, err := plotPNG(res)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// The title line, above the panels, where nothing but text is drawn.
	if n := darkPixels(img, image.Rect(margin, 5, plotW, 25)); n < 200 {
		t.Errorf("the PNG's title line has %d dark pixels: no text", n)
	}
	// The y axis' top value, left of the panel.
	if n := darkPixels(img, image.Rect(0, margin-10, margin-2, margin+8)); n < 10 {
		t.Errorf("the PNG's y range has %d dark pixels: no text", n)
	}
}

func darkPixels(img image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if c, _, _, _ := img.At(x, y).RGBA(); c < 0x8000 {
				n++
			}
		}
	}
	return n
}
