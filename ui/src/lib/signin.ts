// The browser sign-in step's small rules: which links the window lets the user open or
// copy, and the countdown to the server's deadline. The app opens the link itself
// (from Rust, after the same check); these only decide what the window offers.

/** Whether `url` is an http or https link with a host (nothing else is ever opened). */
export function isOpenable(url: string): boolean {
  if (/[\u0000-\u0020\u007f-\u009f]/.test(url)) return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "" && u.username === "";
}

/** Whole seconds until `deadlineMs` (rounded up, 0 once passed); null without a deadline. */
export function secondsLeft(deadlineMs: number | null, now: number): number | null {
  if (deadlineMs === null) return null;
  return Math.max(0, Math.ceil((deadlineMs - now) / 1000));
}

/** "4:05", "0:09", "1:02:03". */
export function formatCountdown(secs: number): string {
  const s = Math.max(0, Math.floor(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}
