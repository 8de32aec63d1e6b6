import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { AppError, ImportReport } from "../../lib/bindings";
import ImportFromServer from "../ImportFromServer.svelte";

const report = { fileName: "vpn.example.com.ovpn" } as ImportReport;
const err = (kind: AppError["kind"], message: string): { error: AppError } => ({
  error: { kind, message, hint: null, details: "" },
});

describe("ImportFromServer", () => {
  it("imports from a URL and closes", async () => {
    const onimporturl = vi.fn().mockResolvedValue({ ok: report });
    const onimportserver = vi.fn();
    const onclose = vi.fn();
    render(ImportFromServer, { onimporturl, onimportserver, onclose });

    const submit = screen.getByRole("button", { name: "Import" });
    expect(submit).toBeDisabled();
    await fireEvent.input(screen.getByLabelText("Address of the profile"), {
      target: { value: " https://vpn.example.com/work.ovpn " },
    });
    await fireEvent.click(submit);
    expect(onimporturl).toHaveBeenCalledWith("https://vpn.example.com/work.ovpn");
    expect(onimportserver).not.toHaveBeenCalled();
    await vi.waitFor(() => expect(onclose).toHaveBeenCalled());
  });

  it("signs in to an Access Server, shows a wrong password, then asks the server's question", async () => {
    const onimportserver = vi
      .fn()
      .mockResolvedValueOnce(err("authFailed", "The server did not accept your user name or password."))
      .mockResolvedValueOnce(err("challengeRequired", "Enter the code from your authenticator app"))
      .mockResolvedValueOnce({ ok: report });
    const onclose = vi.fn();
    render(ImportFromServer, { onimporturl: vi.fn(), onimportserver, onclose });

    await fireEvent.click(screen.getByLabelText("OpenVPN Access Server"));
    await fireEvent.input(screen.getByLabelText("Server address"), { target: { value: "vpn.example.com:943" } });
    await fireEvent.input(screen.getByLabelText("User name"), { target: { value: "ann" } });
    const password = screen.getByLabelText("Password");
    expect(password).toHaveAttribute("type", "password");
    await fireEvent.input(password, { target: { value: "wrong" } });
    await fireEvent.click(screen.getByRole("button", { name: "Import" }));
    expect(onimportserver).toHaveBeenLastCalledWith({
      server: "vpn.example.com:943",
      username: "ann",
      password: "wrong",
      autologin: false,
      remember: false,
      challengeResponse: null,
    });
    expect(await screen.findByRole("alert")).toHaveTextContent("did not accept your user name or password");

    await fireEvent.input(password, { target: { value: "right" } });
    await fireEvent.click(screen.getByLabelText("Remember the password (in the system keyring only)"));
    await fireEvent.click(screen.getByRole("button", { name: "Import" }));
    expect(await screen.findByText("Enter the code from your authenticator app")).toBeInTheDocument();
    const submit = screen.getByRole("button", { name: "Import" });
    expect(submit).toBeDisabled();
    await fireEvent.input(screen.getByLabelText("Your answer"), { target: { value: "123456" } });
    await fireEvent.click(submit);
    expect(onimportserver).toHaveBeenLastCalledWith({
      server: "vpn.example.com:943",
      username: "ann",
      password: "right",
      autologin: false,
      remember: true,
      challengeResponse: "123456",
    });
    await vi.waitFor(() => expect(onclose).toHaveBeenCalled());
  });

  it("explains a server that needs two-factor sign-in set up first", async () => {
    const onimportserver = vi
      .fn()
      .mockResolvedValue(err("twoFactorNotSetUp", "This server needs two-factor sign-in that is not set up yet."));
    render(ImportFromServer, { onimporturl: vi.fn(), onimportserver, onclose: vi.fn() });
    await fireEvent.click(screen.getByLabelText("OpenVPN Access Server"));
    await fireEvent.input(screen.getByLabelText("Server address"), { target: { value: "vpn.example.com" } });
    await fireEvent.input(screen.getByLabelText("User name"), { target: { value: "newbie" } });
    await fireEvent.click(screen.getByRole("button", { name: "Import" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("two-factor sign-in that is not set up yet");
    expect(screen.queryByLabelText("Your answer")).toBeNull();
  });
});
