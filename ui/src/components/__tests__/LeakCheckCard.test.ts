import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { LeakReportView } from "../../lib/bindings";
import LeakCheckCard from "../LeakCheckCard.svelte";

const check = (kind: string, verdict: string, outcome: string, iface: string | null, explanation: string) => ({
  kind,
  verdict,
  outcome,
  addresses: "1.1.1.1",
  interface: iface,
  gateway: null,
  explanation,
});

const broken: LeakReportView = {
  profileName: "lab",
  connected: true,
  failed: true,
  checks: [
    check("default_ipv4", "fail", "blocked_by_kill_switch", "eth0", "the tunnel should carry all IPv4 traffic"),
    check("dns", "pass", "into_tunnel", "oxi0", "DNS questions go to 10.0.0.3"),
    check("kill_switch", "pass", "kill_switch_on", null, "on"),
    check("tunnel_probe", "pass", "some_future_code", "oxi0", "a sentence from a newer helper"),
  ],
};

describe("LeakCheckCard", () => {
  it("asks the helper for the profile on screen and shows each check in plain words", async () => {
    const oncheck = vi.fn().mockResolvedValue({ ok: broken });
    render(LeakCheckCard, { profileId: "p1", oncheck });
    await fireEvent.click(screen.getByRole("button", { name: "Check for leaks" }));
    expect(oncheck).toHaveBeenCalledWith("p1");
    expect(await screen.findByText("1 check failed")).toBeInTheDocument();
    expect(screen.getByText("Internet traffic (IPv4)")).toBeInTheDocument();
    expect(screen.getByText("Its route leaves through eth0, but the kill switch blocks it.")).toBeInTheDocument();
    expect(screen.getByText("Goes into the tunnel (oxi0).")).toBeInTheDocument();
    expect(screen.getAllByText("Pass")).toHaveLength(3);
    expect(screen.getByText("Fail")).toBeInTheDocument();
    // A code this window does not know yet falls back to the helper's sentence.
    expect(screen.getAllByText("a sentence from a newer helper").length).toBeGreaterThan(0);
  });

  it("says when nothing failed and when no VPN is connected, and shows errors", async () => {
    const ok: LeakReportView = { profileName: null, connected: false, failed: false, checks: [check("default_ipv4", "not_applicable", "direct", "eth0", "x")] };
    const oncheck = vi
      .fn()
      .mockResolvedValueOnce({ ok })
      .mockResolvedValueOnce({ error: { kind: "helperNotRunning", message: "The OxiVPN helper is not running.", hint: null, details: "ENOENT" } });
    render(LeakCheckCard, { profileId: null, oncheck });
    await fireEvent.click(screen.getByRole("button", { name: "Check for leaks" }));
    expect(await screen.findByText("No leak found.")).toBeInTheDocument();
    expect(screen.getByText(/this is the direct path/)).toBeInTheDocument();
    expect(screen.getByText("Goes directly through eth0, not through the VPN.")).toBeInTheDocument();
    await fireEvent.click(screen.getByRole("button", { name: "Check for leaks" }));
    expect(await screen.findByText("The OxiVPN helper is not running.")).toBeInTheDocument();
  });
});
