// A time-series line chart drawn with uPlot (bundled, canvas-based, small).
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  color: string;
  values: (number | null)[];
}

export interface MetricChartProps {
  title: string;
  /** Epoch ms, ascending. */
  times: number[];
  series: Series[];
  /** Formats y values on the axis and in the legend. */
  format: (v: number) => string;
  /** Fixed y range (e.g. 0..100 for percentages); otherwise from 0 to the data's maximum. */
  yMax?: number;
  /** Whole-number axis steps (counts). */
  integer?: boolean;
  height?: number;
}

export function MetricChart({ title, times, series, format, yMax, integer = false, height = 160 }: MetricChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join("|");

  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, yMax ?? Math.max(1, max * 1.15)] } },
      axes: [
        { stroke: "#64748b", grid: { stroke: "#eef2f7" }, ticks: { stroke: "#e2e8f0" }, font: "11px system-ui, sans-serif" },
        {
          stroke: "#64748b",
          grid: { stroke: "#eef2f7" },
          ticks: { stroke: "#e2e8f0" },
          font: "11px system-ui, sans-serif",
          size: 64,
          values: (_u, vals) => vals.map((v) => format(v)),
          ...(integer ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] } : {}),
        },
      ],
      series: [
        { label: "time", value: (_u, v) => (v === null ? "—" : new Date(v * 1000).toLocaleTimeString()) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.75,
          fill: `${s.color}1a`,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null ? "—" : format(v)),
        })),
      ],
    };
    plot.current = new uPlot(opts, [[], ...series.map(() => [])] as uPlot.AlignedData, el);
    // Follow the container's width (dialog resizes, 800 px layouts).
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, height, yMax, integer]);

  useEffect(() => {
    plot.current?.setData([times.map((t) => t / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData);
  });

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-canvas" />
    </figure>
  );
}
