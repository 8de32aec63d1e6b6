// Small pure helpers for numbers and times as people read them.
import type { LogEntry, StatsSample } from "./bindings";

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

export function formatRate(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  if (bits < 1000) return `${bits.toFixed(0)} bit/s`;
  if (bits < 1e6) return `${(bits / 1e3).toFixed(1)} kbit/s`;
  if (bits < 1e9) return `${(bits / 1e6).toFixed(1)} Mbit/s`;
  return `${(bits / 1e9).toFixed(2)} Gbit/s`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (x: number) => x.toString().padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

export function formatClock(ms: number): string {
  const d = new Date(ms);
  const two = (x: number) => x.toString().padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export interface RatePoint {
  at: number;
  down: number;
  up: number;
}

/** Bytes per second between consecutive samples; counter resets give 0, not negatives. */
export function rates(samples: StatsSample[]): RatePoint[] {
  const out: RatePoint[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = (b.atMs - a.atMs) / 1000;
    if (dt <= 0) continue;
    out.push({
      at: b.atMs,
      down: Math.max(0, b.bytesIn - a.bytesIn) / dt,
      up: Math.max(0, b.bytesOut - a.bytesOut) / dt,
    });
  }
  return out;
}

export function logLine(e: LogEntry): string {
  return `${new Date(e.atMs).toISOString()} ${e.level.toUpperCase().padEnd(5)} [${e.source}] ${e.message}`;
}
