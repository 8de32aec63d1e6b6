import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { ServiceView } from "../../lib/bindings";
import ServiceBanner from "../ServiceBanner.svelte";

const lost: ServiceView = {
  waiting: true,
  attempts: 3,
  error: {
    kind: "helperLost",
    message: "The connection to the OxiVPN helper was lost.",
    hint: "Start the service, then try again.",
    details: "the helper closed the connection",
  },
};

describe("ServiceBanner", () => {
  it("says the app waits for the service, how often it tried, why, and offers Try again", async () => {
    const onretry = vi.fn();
    render(ServiceBanner, { service: lost, onretry });
    expect(screen.getByRole("status")).toHaveTextContent("Waiting for the OxiVPN service…");
    expect(screen.getByTestId("service-attempts")).toHaveTextContent("3 tries so far");
    expect(screen.getByRole("alert")).toHaveTextContent("The connection to the OxiVPN helper was lost.");
    await fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(onretry).toHaveBeenCalledOnce();
  });

  it("does not try twice while a try runs, and shows nothing once the service is back", async () => {
    const onretry = vi.fn();
    const { unmount } = render(ServiceBanner, { service: { ...lost, attempts: 1 }, busy: true, onretry });
    expect(screen.getByTestId("service-attempts")).toHaveTextContent("1 try so far");
    await fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(onretry).not.toHaveBeenCalled();
    unmount();
    const back = render(ServiceBanner, { service: { waiting: false, error: null, attempts: 0 }, onretry });
    expect(back.container.textContent?.trim()).toBe("");
  });
});
