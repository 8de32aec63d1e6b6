import { get } from "svelte/store";
import { _ } from "svelte-i18n";
import { describe, expect, it } from "vitest";
import type { Settings } from "./bindings";
import { protectionFor, protectionLine as line } from "./protection";

const protectionLine = (...a: [Parameters<typeof line>[1], Parameters<typeof line>[2]]) => line(get(_), ...a);

const settings: Settings = {
  startAtLogin: false,
  notifications: true,
  closeToTray: true,
  protection: { killSwitch: "always", allowLan: true },
  profileProtection: { Work: { killSwitch: "off", allowLan: false } },
  language: null,
  autoConnect: {},
  trustedNetworks: [],
  untrustedProfile: null,
};

describe("protection", () => {
  it("a profile's own setting wins over the global one", () => {
    expect(protectionFor(settings, "Work")).toEqual({ protection: { killSwitch: "off", allowLan: false }, own: true });
    expect(protectionFor(settings, "Home")).toEqual({ protection: settings.protection, own: false });
  });

  it("says what is in force and why", () => {
    expect(
      protectionLine({ requested: { killSwitch: "automatic", allowLan: false }, source: "global", killSwitchActive: true }, true),
    ).toBe("Kill switch on: nothing leaves outside the VPN — automatic (your global setting): all your traffic goes through the VPN.");
    expect(
      protectionLine({ requested: { killSwitch: "automatic", allowLan: false }, source: "global", killSwitchActive: false }, false),
    ).toBe("Kill switch off — automatic (your global setting): this VPN only reaches some networks.");
    expect(
      protectionLine({ requested: { killSwitch: "always", allowLan: true }, source: "profile", killSwitchActive: true }, true),
    ).toBe("Kill switch on: nothing leaves outside the VPN — always (this profile's setting); your local network stays reachable.");
    // A session taken over at start: only the helper's word.
    expect(protectionLine(null, true)).toBe("Kill switch on: nothing leaves outside the VPN");
    expect(protectionLine(null, null)).toBe("Not reported by the helper");
  });
});
