// Small SVG charts drawn from the gateway's own data (audit records, live model status): no chart library,
// no Prometheus, nothing from another origin. Each chart has a text alternative.

export interface Point {
  label: string;
  value: number;
}

const W = 600;
const H = 160;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

function scale(points: Point[]) {
  // Minutes without data are NaN (no line drawn there), never part of the scale.
  const max = Math.max(1, ...points.map((p) => p.value).filter(Number.isFinite));
  const x = (i: number) => PAD.left + (i * (W - PAD.left - PAD.right)) / Math.max(points.length, 1);
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  return { max, x, y, step: (W - PAD.left - PAD.right) / Math.max(points.length, 1) };
}

function Axes({ max, unit, points }: { max: number; unit: string; points: Point[] }) {
  const last = points.length - 1;
  return (
    <>
      <line class="axis" x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} />
      <line class="axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={H - PAD.bottom} />
      <text x={PAD.left - 4} y={PAD.top + 8} text-anchor="end">
        {Math.round(max).toLocaleString()}
      </text>
      <text x={PAD.left - 4} y={H - PAD.bottom} text-anchor="end">
        0
      </text>
      <text x={PAD.left} y={H - 6}>
        {points[0]?.label ?? ''}
      </text>
      <text x={W - PAD.right} y={H - 6} text-anchor="end">
        {points[last]?.label ?? ''} {unit ? `(${unit})` : ''}
      </text>
    </>
  );
}

export function BarChart({ title, points, unit }: { title: string; points: Point[]; unit: string }) {
  const { max, x, y, step } = scale(points);
  const total = points.reduce((n, p) => n + p.value, 0);
  return (
    <figure class="chart-figure">
      <figcaption>{title}</figcaption>
      <svg
        class="chart"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${title}: ${total.toLocaleString()} in all`}
      >
        <Axes max={max} unit={unit} points={points} />
        {points.map((p, i) =>
          p.value > 0 ? (
            <rect
              key={i}
              class="bar"
              x={x(i) + 1}
              y={y(p.value)}
              width={Math.max(step - 2, 1)}
              height={H - PAD.bottom - y(p.value)}
            >
              <title>
                {p.label}: {p.value.toLocaleString()} {unit}
              </title>
            </rect>
          ) : null,
        )}
      </svg>
    </figure>
  );
}

export function LineChart({ title, points, unit }: { title: string; points: Point[]; unit: string }) {
  const { max, x, y, step } = scale(points);
  const shown = points.map((p, i) => ({ ...p, i })).filter((p) => Number.isFinite(p.value));
  const path = shown.map((p, n) => `${n === 0 ? 'M' : 'L'}${x(p.i) + step / 2},${y(p.value)}`).join(' ');
  return (
    <figure class="chart-figure">
      <figcaption>{title}</figcaption>
      <svg
        class="chart"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${title}, highest ${Math.round(max)} ${unit}`}
      >
        <Axes max={max} unit={unit} points={points} />
        {path ? <path class="line" d={path} /> : null}
        {shown.map((p) => (
          <circle key={p.i} class="dot" cx={x(p.i) + step / 2} cy={y(p.value)} r={2.5}>
            <title>
              {p.label}: {Math.round(p.value)} {unit}
            </title>
          </circle>
        ))}
      </svg>
    </figure>
  );
}
