// A line chart as SVG: no library, nothing inline a CSP would refuse.

export interface ChartProps {
  title: string;
  unit: string;
  values: number[];
  /** Values the same length as `values`, drawn as a second (failure) line. */
  second?: number[];
}

function points(values: number[], max: number, w: number, h: number): string {
  const n = Math.max(1, values.length - 1);
  return values.map((v, i) => `${((i / n) * w).toFixed(1)},${(h - (v / max) * h).toFixed(1)}`).join(' ');
}

export function Chart({ title, unit, values, second }: ChartProps) {
  const w = 300;
  const h = 80;
  const max = Math.max(1, ...values, ...(second ?? []));
  const last = values.length > 0 ? values[values.length - 1]! : 0;
  return (
    <figure class="chart">
      <figcaption>
        {title}: <strong>{last.toFixed(last < 10 ? 1 : 0)}</strong> {unit}
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`${title}, last ${last.toFixed(1)} ${unit}, peak ${max.toFixed(1)}`}>
        <polyline class="line" points={points(values, max, w, h)} />
        {second && <polyline class="line second" points={points(second, max, w, h)} />}
      </svg>
      <small>peak {max.toFixed(1)} {unit}, last 5 minutes</small>
    </figure>
  );
}
