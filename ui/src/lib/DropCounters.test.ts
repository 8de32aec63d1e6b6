import { render, screen } from "@testing-library/svelte";
import { describe, expect, it } from "vitest";
import DropCounters from "./DropCounters.svelte";

describe("DropCounters", () => {
  it("says none when nothing was dropped", () => {
    render(DropCounters, { drops: { total: 0, reasons: [] } });
    expect(screen.getByText("None")).toBeInTheDocument();
  });

  it("names each reason with its count", () => {
    render(DropCounters, {
      drops: { total: 5, reasons: [{ label: "replayed", count: 2 }, { label: "compression", count: 3 }] },
    });
    expect(screen.getByText(/5:\s*replayed 2, compression 3/)).toBeInTheDocument();
  });
});
