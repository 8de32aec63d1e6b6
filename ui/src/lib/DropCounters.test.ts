import { render, screen } from "@testing-library/svelte";
import { describe, expect, it } from "vitest";
import DropCounters from "./DropCounters.svelte";

describe("DropCounters", () => {
  it("says none when nothing was dropped", () => {
    render(DropCounters, { drops: { total: 0, reasons: [], mssClamped: 0 } });
    expect(screen.getByText("None")).toBeInTheDocument();
    expect(screen.getByTestId("mss-clamped")).toHaveTextContent("0 packets adjusted");
  });

  it("names each reason with its count, and the MSS clamps beside them", () => {
    render(DropCounters, {
      drops: {
        total: 6,
        reasons: [
          { label: "replayed", count: 2 },
          { label: "compression", count: 3 },
          { label: "epoch out of window", count: 1 },
        ],
        mssClamped: 1,
      },
    });
    expect(screen.getByText(/6:\s*replayed 2, compression 3, epoch out of window 1/)).toBeInTheDocument();
    expect(screen.getByTestId("mss-clamped")).toHaveTextContent("1 packet adjusted");
  });
});
