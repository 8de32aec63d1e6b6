import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { NetworkStatus, Settings } from "../../lib/bindings";
import TrustedNetworks from "../TrustedNetworks.svelte";

const base: Settings = {
  startAtLogin: false,
  notifications: true,
  closeToTray: true,
  protection: { killSwitch: "automatic", allowLan: false },
  profileProtection: {},
  language: null,
  autoConnect: {},
  trustedNetworks: ["HomeNet"],
  untrustedProfile: "Work",
};
const status: NetworkStatus = {
  available: true,
  networks: [{ name: "Airport Free WiFi", wifi: true }],
  state: "connect",
  network: "Airport Free WiFi",
  profile: "Work",
  error: null,
};
const profiles = [{ id: "Work", name: "Work", server: "vpn:1194", protocol: "UDP", auth: "certificate" as const }];

describe("TrustedNetworks", () => {
  it("shows the decision and trusts the current network in one click", async () => {
    const onchange = vi.fn();
    render(TrustedNetworks, { settings: base, profiles, status, onchange });
    expect(screen.getByTestId("network-state")).toHaveTextContent("Now on “Airport Free WiFi”, which is not trusted");
    expect(screen.getByText("not seen now")).toBeInTheDocument();
    await fireEvent.click(screen.getByRole("button", { name: "Trust “Airport Free WiFi”" }));
    expect(onchange).toHaveBeenCalledWith({ ...base, trustedNetworks: ["HomeNet", "Airport Free WiFi"] });
  });

  it("says when the rule names a profile that is gone, and when networks cannot be watched", () => {
    render(TrustedNetworks, {
      settings: { ...base, untrustedProfile: "Deleted" },
      profiles,
      status: { ...status, available: false, state: "unavailable", networks: [], error: "no bus" },
      onchange: vi.fn(),
    });
    expect(screen.getByRole("alert")).toHaveTextContent("“Deleted”, which no longer exists");
    expect(screen.getByRole("note")).toHaveTextContent("needs NetworkManager");
  });
});
