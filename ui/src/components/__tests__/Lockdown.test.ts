import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { LockdownView } from "../../lib/bindings";
import LockdownBanner from "../LockdownBanner.svelte";
import LockdownToggle from "../LockdownToggle.svelte";

const state = (over: Partial<LockdownView> = {}): LockdownView => ({
  offered: true,
  enabled: true,
  allowLan: false,
  blocking: true,
  setByAdmin: false,
  mayChange: true,
  problem: null,
  ...over,
});

describe("LockdownBanner", () => {
  it("says the internet is blocked and offers both ways out", async () => {
    const onconnect = vi.fn();
    const onturnoff = vi.fn();
    render(LockdownBanner, { lockdown: state(), canConnect: true, onconnect, onturnoff });
    expect(screen.getByRole("alert")).toHaveTextContent("Internet blocked: lockdown is on and no VPN is connected");
    await fireEvent.click(screen.getByRole("button", { name: "Connect" }));
    await fireEvent.click(screen.getByRole("button", { name: "Turn off lockdown" }));
    expect(onconnect).toHaveBeenCalledOnce();
    expect(onturnoff).toHaveBeenCalledOnce();
  });

  it("says lockdown is in force while a VPN holds, and nothing when off", () => {
    const props = { canConnect: true, onconnect: vi.fn(), onturnoff: vi.fn() };
    const { unmount } = render(LockdownBanner, { ...props, lockdown: state({ blocking: false }) });
    expect(screen.queryByRole("alert")).toBeNull();
    expect(screen.getByRole("note")).toHaveTextContent("Lockdown is on: if the VPN disconnects, all traffic stays blocked.");
    unmount();
    const off = render(LockdownBanner, { ...props, lockdown: state({ enabled: false, blocking: false }) });
    expect(off.container.textContent?.trim()).toBe("");
    off.unmount();
    render(LockdownBanner, { ...props, lockdown: state({ offered: false }) });
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("offers the administrator the way out of their own lockdown", async () => {
    const onturnoff = vi.fn();
    render(LockdownBanner, { lockdown: state({ setByAdmin: true, mayChange: true }), canConnect: true, onconnect: vi.fn(), onturnoff });
    await fireEvent.click(screen.getByRole("button", { name: "Turn off lockdown" }));
    expect(onturnoff).toHaveBeenCalledOnce();
    expect(screen.queryByText(/only an administrator can turn it off/)).toBeNull();
  });

  it("has no turn-off button for an administrator's lockdown", () => {
    render(LockdownBanner, { lockdown: state({ setByAdmin: true, mayChange: false }), canConnect: false, onconnect: vi.fn(), onturnoff: vi.fn() });
    expect(screen.queryByRole("button", { name: "Turn off lockdown" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Connect" })).toBeNull();
    expect(screen.getByText("An administrator turned lockdown on; only an administrator can turn it off.")).toBeInTheDocument();
  });
});

describe("LockdownToggle", () => {
  it("turns lockdown on and off and allows the LAN", async () => {
    const onchange = vi.fn();
    const { rerender } = render(LockdownToggle, { lockdown: state({ enabled: false, blocking: false }), onchange });
    const toggle = screen.getByRole("checkbox", { name: /Block all traffic while disconnected/ });
    const lan = screen.getByRole("checkbox", { name: /Allow the local network/ });
    expect(toggle).not.toBeChecked();
    expect(lan).toBeDisabled();
    await fireEvent.click(toggle);
    expect(onchange).toHaveBeenLastCalledWith(true, false);
    await rerender({ lockdown: state(), onchange });
    expect(screen.getByRole("checkbox", { name: /Allow the local network/ })).toBeEnabled();
    await fireEvent.click(screen.getByRole("checkbox", { name: /Allow the local network/ }));
    expect(onchange).toHaveBeenLastCalledWith(true, true);
    await fireEvent.click(screen.getByRole("checkbox", { name: /Block all traffic/ }));
    expect(onchange).toHaveBeenLastCalledWith(false, false);
  });

  it("cannot lift an administrator's lockdown and says when the helper has none", async () => {
    const onchange = vi.fn();
    const { unmount } = render(LockdownToggle, { lockdown: state({ setByAdmin: true, mayChange: false }), onchange });
    expect(screen.getByRole("checkbox", { name: /Block all traffic/ })).toBeDisabled();
    expect(screen.getByText(/only an administrator can turn it off/)).toBeInTheDocument();
    unmount();
    render(LockdownToggle, { lockdown: state({ offered: false, enabled: false }), onchange });
    expect(screen.queryByRole("checkbox")).toBeNull();
    expect(screen.getByText(/this OxiVPN helper has no lockdown/)).toBeInTheDocument();
  });
});
