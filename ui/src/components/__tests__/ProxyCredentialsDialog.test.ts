import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { CredentialsPrompt } from "../../lib/bindings";
import ProxyCredentialsDialog from "../ProxyCredentialsDialog.svelte";

const proxyPrompt: CredentialsPrompt = {
  id: 5,
  profileId: "p1",
  profileName: "Hotel",
  kind: { kind: "proxy", username: null, proxyKind: "HTTP", proxy: "proxy.example.com:3128" },
  error: null,
};

describe("ProxyCredentialsDialog", () => {
  it("names the proxy and sends its user name, password and the remember choice", async () => {
    const onsubmit = vi.fn();
    render(ProxyCredentialsDialog, { prompt: proxyPrompt, onsubmit, oncancel: vi.fn() });
    expect(screen.getByRole("heading", { name: "Proxy sign-in for Hotel" })).toBeInTheDocument();
    expect(screen.getByText(/through the HTTP proxy proxy\.example\.com:3128/)).toBeInTheDocument();
    await fireEvent.input(screen.getByLabelText("Proxy user name"), { target: { value: " squid " } });
    await fireEvent.input(screen.getByLabelText("Proxy password"), { target: { value: "px-secret" } });
    await fireEvent.click(screen.getByLabelText("Remember the proxy password in the system keyring"));
    await fireEvent.click(screen.getByRole("button", { name: "Connect" }));
    expect(onsubmit).toHaveBeenCalledWith({
      promptId: 5,
      username: "squid",
      password: "px-secret",
      challengeResponse: null,
      keyPassphrase: null,
      remember: true,
    });
  });

  it("refuses an empty password and says so", async () => {
    const onsubmit = vi.fn();
    render(ProxyCredentialsDialog, { prompt: proxyPrompt, onsubmit, oncancel: vi.fn() });
    await fireEvent.input(screen.getByLabelText("Proxy user name"), { target: { value: "squid" } });
    await fireEvent.click(screen.getByRole("button", { name: "Connect" }));
    expect(onsubmit).not.toHaveBeenCalled();
    expect(screen.getByRole("alert")).toHaveTextContent("Please enter the proxy password.");
  });

  it("says why it asks again, keeps the user name and leaves remember off", () => {
    render(ProxyCredentialsDialog, {
      prompt: {
        ...proxyPrompt,
        kind: { kind: "proxy", username: "squid", proxyKind: "SOCKS", proxy: "192.0.2.7:1080" },
        error: "The proxy did not accept the proxy user name or password.",
      },
      onsubmit: vi.fn(),
      oncancel: vi.fn(),
    });
    expect(screen.getByRole("alert")).toHaveTextContent("did not accept the proxy user name or password");
    expect(screen.getByLabelText("Proxy user name")).toHaveValue("squid");
    expect(screen.getByLabelText("Remember the proxy password in the system keyring")).not.toBeChecked();
    expect(screen.getByText(/SOCKS proxy 192\.0\.2\.7:1080/)).toBeInTheDocument();
  });

  it("cancel calls back", async () => {
    const oncancel = vi.fn();
    render(ProxyCredentialsDialog, { prompt: proxyPrompt, onsubmit: vi.fn(), oncancel });
    await fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(oncancel).toHaveBeenCalled();
  });
});
