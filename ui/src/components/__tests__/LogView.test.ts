import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { LogEntry } from "../../lib/bindings";
import LogView from "../LogView.svelte";

const entries: LogEntry[] = [
  { atMs: Date.UTC(2026, 0, 1, 10, 0, 0), level: "info", source: "app", message: "Connecting with \"Work\"." },
  { atMs: Date.UTC(2026, 0, 1, 10, 0, 1), level: "debug", source: "helper", message: "TLS: sent ClientHello" },
  { atMs: Date.UTC(2026, 0, 1, 10, 0, 2), level: "warn", source: "helper", message: "server pushed an unknown option" },
  { atMs: Date.UTC(2026, 0, 1, 10, 0, 3), level: "error", source: "helper", message: "AUTH_FAILED" },
];

describe("LogView", () => {
  it("shows information and above by default", () => {
    render(LogView, { entries, onsave: vi.fn(), oncopy: vi.fn() });
    expect(screen.getByText("Connecting with \"Work\".")).toBeInTheDocument();
    expect(screen.queryByText("TLS: sent ClientHello")).toBeNull();
    expect(screen.getByText("3 of 4 lines")).toBeInTheDocument();
  });

  it("filters by text and level, and copies what is shown", async () => {
    const oncopy = vi.fn();
    render(LogView, { entries, onsave: vi.fn(), oncopy });
    await fireEvent.change(screen.getByLabelText("Lowest level shown"), { target: { value: "debug" } });
    expect(screen.getByText("TLS: sent ClientHello")).toBeInTheDocument();
    await fireEvent.input(screen.getByLabelText("Filter the log"), { target: { value: "auth" } });
    expect(screen.getByText("1 of 4 lines")).toBeInTheDocument();
    await fireEvent.click(screen.getByRole("button", { name: "Copy" }));
    expect(oncopy).toHaveBeenCalledWith("2026-01-01T10:00:03.000Z ERROR [helper] AUTH_FAILED\n");
  });

  it("saves the filtered text and says when nothing matches", async () => {
    const onsave = vi.fn();
    render(LogView, { entries, onsave, oncopy: vi.fn() });
    await fireEvent.change(screen.getByLabelText("Lowest level shown"), { target: { value: "warn" } });
    await fireEvent.click(screen.getByRole("button", { name: "Save…" }));
    expect(onsave.mock.calls[0][0].split("\n").filter(Boolean)).toHaveLength(2);
    await fireEvent.input(screen.getByLabelText("Filter the log"), { target: { value: "zzz" } });
    expect(screen.getByText("No line matches the filter.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Copy" })).toBeDisabled();
  });

  it("has a friendly empty state", () => {
    render(LogView, { entries: [], onsave: vi.fn(), oncopy: vi.fn() });
    expect(screen.getByText(/No log lines yet/)).toBeInTheDocument();
  });
});
