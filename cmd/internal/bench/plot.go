package bench

import (
	"errors"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// ErrPlotFormat means the plot file's extension is neither .png nor .svg.
var ErrPlotFormat = errors.New("plot file must end in .png or .svg")

// WritePlot draws the CDF of time-to-last-peer of each run into path, a
// PNG or an SVG by its extension. The x axis is logarithmic (ms): the
// profiles differ by orders of magnitude in their tails.
func WritePlot(path string, runs []Result) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("%w: %q", ErrPlotFormat, path)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create plot: %w", err)
	}
	p := newPlot(runs)
	if ext == ".svg" {
		err = p.svg(f)
	} else {
		err = p.png(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

const (
	plotW, plotH                               = 860, 520
	marginL, marginR, marginT, marginB         = 70, 20, 40, 55
	innerW, innerH                             = plotW - marginL - marginR, plotH - marginT - marginB
	minPlotMS                          float64 = 0.1
)

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
	{0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff}, {0xbc, 0xbd, 0x22, 0xff},
}

// plot is the geometry shared by both renderers.
type plot struct {
	title      string
	series     []series
	lo, hi     float64 // log10 of the x range, ms
	xTicks     []float64
	axisLabelX string
}

type series struct {
	label  string
	color  color.RGBA
	points [][2]float64 // pixel coordinates of the step curve
}

func newPlot(runs []Result) *plot {
	p := &plot{title: "CDF of time from cut to the last peer's commit", axisLabelX: "time to last peer (ms, log scale)"}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range runs {
		for _, v := range r.TimeToLastSamples {
			v = math.Max(v, minPlotMS)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 1000
	}
	p.lo, p.hi = math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if p.hi <= p.lo {
		p.hi = p.lo + 1
	}
	for e := p.lo; e <= p.hi; e++ {
		p.xTicks = append(p.xTicks, e)
	}
	sameWorkload := true
	for _, r := range runs {
		if r.Peers != runs[0].Peers || r.BlockSize != runs[0].BlockSize || r.Transport != runs[0].Transport {
			sameWorkload = false
		}
	}
	if sameWorkload && len(runs) > 0 {
		p.title += fmt.Sprintf(" (%d peers, %s blocks, %s)", runs[0].Peers, sizeName(runs[0].BlockSize), runs[0].Transport)
	}
	for i, r := range runs {
		s := series{label: r.Profile, color: palette[i%len(palette)]}
		if !sameWorkload {
			s.label = fmt.Sprintf("%s %dp %s", r.Profile, r.Peers, sizeName(r.BlockSize))
		}
		if r.IncompleteBlocks > 0 {
			s.label += fmt.Sprintf(" (%d incomplete)", r.IncompleteBlocks)
		}
		n := float64(r.Blocks) // incomplete blocks keep the curve below 1
		if n == 0 {
			n = float64(len(r.TimeToLastSamples))
		}
		y := 0.0
		for j, v := range r.TimeToLastSamples {
			x := p.x(v)
			s.points = append(s.points, [2]float64{x, p.y(y)})
			y = float64(j+1) / n
			s.points = append(s.points, [2]float64{x, p.y(y)})
		}
		if len(s.points) > 0 {
			s.points = append(s.points, [2]float64{marginL + innerW, p.y(y)})
		}
		p.series = append(p.series, s)
	}
	return p
}

func (p *plot) x(ms float64) float64 {
	v := math.Log10(math.Max(ms, minPlotMS))
	return marginL + (v-p.lo)/(p.hi-p.lo)*innerW
}

func (p *plot) y(frac float64) float64 { return marginT + (1-frac)*innerH }

func tickLabel(e float64) string {
	v := math.Pow(10, e)
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

func (p *plot) svg(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14">%s</text>`+"\n", marginL, html.EscapeString(p.title))
	for _, e := range p.xTicks {
		x := p.x(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, marginT, x, marginT+innerH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, marginT+innerH+16, tickLabel(e))
	}
	for i := 0; i <= 4; i++ {
		y := p.y(float64(i) / 4)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y, marginL+innerW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.2f</text>`+"\n", marginL-6, y+4, float64(i)/4)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", marginL, marginT, innerW, innerH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+innerW/2, plotH-12, p.axisLabelX)
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">fraction of blocks</text>`+"\n", marginT+innerH/2, marginT+innerH/2)
	for i, s := range p.series {
		col := fmt.Sprintf("#%02x%02x%02x", s.color.R, s.color.G, s.color.B)
		if len(s.points) > 0 {
			var pts []string
			for _, pt := range s.points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", pt[0], pt[1]))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(pts, " "))
		}
		ly := marginT + innerH - 12 - 18*(len(p.series)-1-i)
		lx := marginL + innerW - 260
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", lx, ly-4, lx+24, ly-4, col)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+30, ly, html.EscapeString(s.label))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *plot) png(w io.Writer) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	grid := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	black := color.RGBA{0, 0, 0, 0xff}
	text := func(x, y int, s string, anchor int) { // anchor: 0 left, 1 centre, 2 right
		d := &font.Drawer{Dst: img, Src: image.NewUniform(black), Face: basicfont.Face7x13}
		wdt := d.MeasureString(s).Round()
		x -= anchor * wdt / 2
		d.Dot = fixed.P(x, y)
		d.DrawString(s)
	}
	text(marginL, 15, p.title, 0)
	for _, e := range p.xTicks {
		x := int(p.x(math.Pow(10, e)))
		line(img, float64(x), marginT, float64(x), marginT+innerH, grid, 1)
		text(x, marginT+innerH+16, tickLabel(e), 1)
	}
	for i := 0; i <= 4; i++ {
		y := p.y(float64(i) / 4)
		line(img, marginL, y, marginL+innerW, y, grid, 1)
		text(marginL-6, int(y)+4, fmt.Sprintf("%.2f", float64(i)/4), 2)
	}
	for _, seg := range [][4]float64{
		{marginL, marginT, marginL + innerW, marginT}, {marginL, marginT + innerH, marginL + innerW, marginT + innerH},
		{marginL, marginT, marginL, marginT + innerH}, {marginL + innerW, marginT, marginL + innerW, marginT + innerH},
	} {
		line(img, seg[0], seg[1], seg[2], seg[3], black, 1)
	}
	text(marginL+innerW/2, plotH-12, p.axisLabelX, 1)
	text(4, marginT-6, "fraction of blocks", 0)
	for i, s := range p.series {
		for j := 1; j < len(s.points); j++ {
			a, b := s.points[j-1], s.points[j]
			line(img, a[0], a[1], b[0], b[1], s.color, 2)
		}
		ly := marginT + innerH - 12 - 18*(len(p.series)-1-i)
		lx := marginL + innerW - 260
		line(img, float64(lx), float64(ly-4), float64(lx+24), float64(ly-4), s.color, 3)
		text(lx+30, ly, s.label, 0)
	}
	return png.Encode(w, img)
}

// line draws a straight line of the given thickness (pixels).
func line(img *image.RGBA, x0, y0, x1, y1 float64, c color.RGBA, width int) {
	steps := int(math.Max(math.Abs(x1-x0), math.Abs(y1-y0))) + 1
	for i := 0; i <= steps; i++ {
		t := float64(i) / float64(steps)
		x, y := int(math.Round(x0+(x1-x0)*t)), int(math.Round(y0+(y1-y0)*t))
		for dx := 0; dx < width; dx++ {
			for dy := 0; dy < width; dy++ {
				img.SetRGBA(x+dx-width/2, y+dy-width/2, c)
			}
		}
	}
}
