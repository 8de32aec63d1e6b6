// The only place the window talks to Rust: generated command wrappers plus the event
// channel, with every rejection turned into an AppError.
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { commands, EVENT_CHANNEL, type AppError, type AppEvent } from "./bindings";

export function asAppError(e: unknown): AppError {
  if (e && typeof e === "object" && "kind" in e && "message" in e) return e as AppError;
  const text = e instanceof Error ? e.message : String(e);
  return { kind: "internal", message: "Something went wrong inside OxiVPN.", hint: null, details: text };
}

/** Runs a command; resolves to `{ ok }` or `{ error }`, never rejects. */
export async function call<T>(
  run: (c: typeof commands) => Promise<T>,
): Promise<{ ok: T; error?: undefined } | { ok?: undefined; error: AppError }> {
  try {
    return { ok: await run(commands) };
  } catch (e) {
    return { error: asAppError(e) };
  }
}

export function onAppEvent(handler: (e: AppEvent) => void): Promise<UnlistenFn> {
  return listen<AppEvent>(EVENT_CHANNEL, (ev) => handler(ev.payload));
}

/** Tauri's own drag-and-drop events, for the drop overlay. */
export async function onDragOver(handler: (over: boolean) => void): Promise<UnlistenFn> {
  const a = await listen("tauri://drag-enter", () => handler(true));
  const b = await listen("tauri://drag-leave", () => handler(false));
  const c = await listen("tauri://drag-drop", () => handler(false));
  return () => {
    a();
    b();
    c();
  };
}
