import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { RoutesView as Routes } from "../../lib/bindings";
import RoutesView from "../RoutesView.svelte";

const routes: Routes = {
  tunnelNetworks: ["All traffic (0.0.0.0/1 and 128.0.0.0/1)"],
  plan: [
    { destination: "0.0.0.0/1", side: "tunnel", what: "Everything else", gateway: "10.8.0.1", device: "oxi0", reason: "redirect-gateway def1: first half of IPv4" },
    { destination: "198.18.0.1/32", side: "outside", what: "The VPN server", gateway: "192.168.1.1", device: "eth0", reason: "the tunnel's own packets go around it" },
    { destination: "0.0.0.0/0", side: "blocked", what: "Blocked", gateway: null, device: null, reason: "kill switch: everything else is dropped" },
  ],
  notes: ["server is on-link: no host route"],
  checks: [
    { address: "1.1.1.1", label: "The internet (1.1.1.1)", viaTunnel: true, interface: "oxi0", gateway: "10.8.0.1", route: "0.0.0.0/1 via 10.8.0.1 dev oxi0", explanation: "redirect-gateway" },
  ],
};

describe("RoutesView", () => {
  it("draws the session's plan: into the tunnel, around it, blocked, with reasons", () => {
    render(RoutesView, { routes, connected: true, oncheck: vi.fn(), onrefresh: vi.fn() });
    expect(screen.getByText("Into the tunnel")).toBeInTheDocument();
    expect(screen.getByText("Outside the tunnel")).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: "Blocked" })).toBeInTheDocument();
    expect(screen.getByText("198.18.0.1/32")).toBeInTheDocument();
    expect(screen.getByText("the tunnel's own packets go around it")).toBeInTheDocument();
    expect(screen.getByText("server is on-link: no host route")).toBeInTheDocument();
    // With a plan, the profile's own guess is not shown twice.
    expect(screen.queryByText("Sent into the tunnel by this profile")).toBeNull();
  });

  it("falls back to the profile's networks without a plan, and says when not connected", () => {
    render(RoutesView, { routes: { ...routes, plan: [], notes: [] }, connected: false, oncheck: vi.fn(), onrefresh: vi.fn() });
    expect(screen.getByText("Sent into the tunnel by this profile")).toBeInTheDocument();
    expect(screen.getByText(/Not connected/)).toBeInTheDocument();
  });

  it("asks the helper where a typed address goes and shows its answer or its error", async () => {
    const oncheck = vi
      .fn()
      .mockResolvedValueOnce({
        ok: { address: "10.0.0.3", label: "10.0.0.3", viaTunnel: true, interface: "oxi0", gateway: "10.8.0.1", route: null, explanation: "pushed route" },
      })
      .mockResolvedValueOnce({
        error: { kind: "helperNotRunning", message: "The OxiVPN helper is not running.", hint: null, details: "connect: ENOENT" },
      });
    render(RoutesView, { routes, connected: true, oncheck, onrefresh: vi.fn() });
    await fireEvent.input(screen.getByLabelText("IP address"), { target: { value: "10.0.0.3" } });
    await fireEvent.click(screen.getByRole("button", { name: "Check" }));
    expect(oncheck).toHaveBeenCalledWith("10.0.0.3");
    expect(await screen.findByText("pushed route")).toBeInTheDocument();
    await fireEvent.click(screen.getByRole("button", { name: "Check" }));
    expect(await screen.findByText("The OxiVPN helper is not running.")).toBeInTheDocument();
  });
});
