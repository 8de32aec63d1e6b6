import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { CredentialsPrompt } from "../../lib/bindings";
import CredentialsDialog from "../CredentialsDialog.svelte";

const passwordPrompt: CredentialsPrompt = {
  id: 3,
  profileId: "p1",
  profileName: "Work",
  kind: { kind: "password", username: null, challenge: null, keyPassphrase: false },
  error: null,
};

describe("CredentialsDialog", () => {
  it("sends user name, password and the remember choice", async () => {
    const onsubmit = vi.fn();
    render(CredentialsDialog, { prompt: passwordPrompt, onsubmit, oncancel: vi.fn() });
    expect(screen.getByRole("heading", { name: "Sign in to Work" })).toBeInTheDocument();
    await fireEvent.input(screen.getByLabelText("User name"), { target: { value: " ann " } });
    await fireEvent.input(screen.getByLabelText("Password"), { target: { value: "s3cret" } });
    await fireEvent.click(screen.getByLabelText("Remember in the system keyring"));
    await fireEvent.click(screen.getByRole("button", { name: "Connect" }));
    expect(onsubmit).toHaveBeenCalledWith({
      promptId: 3,
      username: "ann",
      password: "s3cret",
      challengeResponse: null,
      keyPassphrase: null,
      remember: true,
    });
  });

  it("refuses an empty password and says so", async () => {
    const onsubmit = vi.fn();
    render(CredentialsDialog, { prompt: passwordPrompt, onsubmit, oncancel: vi.fn() });
    await fireEvent.input(screen.getByLabelText("User name"), { target: { value: "ann" } });
    await fireEvent.click(screen.getByRole("button", { name: "Connect" }));
    expect(onsubmit).not.toHaveBeenCalled();
    expect(screen.getByRole("alert")).toHaveTextContent("Please enter your password.");
  });

  it("shows why it asks again and keeps the known user name", () => {
    render(CredentialsDialog, {
      prompt: {
        ...passwordPrompt,
        kind: { kind: "password", username: "ann", challenge: null, keyPassphrase: false },
        error: "The server did not accept your user name or password.",
      },
      onsubmit: vi.fn(),
      oncancel: vi.fn(),
    });
    expect(screen.getByRole("alert")).toHaveTextContent("did not accept");
    expect(screen.getByLabelText("User name")).toHaveValue("ann");
  });

  it("asks the static challenge with the password and never offers remember", async () => {
    const onsubmit = vi.fn();
    render(CredentialsDialog, {
      prompt: {
        ...passwordPrompt,
        kind: { kind: "password", username: "ann", challenge: { text: "Enter your PIN", echo: false }, keyPassphrase: false },
      },
      onsubmit,
      oncancel: vi.fn(),
    });
    expect(screen.queryByLabelText("Remember in the system keyring")).toBeNull();
    const pin = screen.getByLabelText("Enter your PIN");
    expect(pin).toHaveAttribute("type", "password");
    await fireEvent.input(screen.getByLabelText("Password"), { target: { value: "pw" } });
    await fireEvent.input(pin, { target: { value: "4711" } });
    await fireEvent.click(screen.getByRole("button", { name: "Connect" }));
    expect(onsubmit).toHaveBeenCalledWith(expect.objectContaining({ challengeResponse: "4711", remember: false }));
  });

  it("answers a dynamic challenge from the server", async () => {
    const onsubmit = vi.fn();
    render(CredentialsDialog, {
      prompt: { ...passwordPrompt, id: 9, kind: { kind: "challenge", challenge: { text: "Enter the code from your app", echo: true } } },
      onsubmit,
      oncancel: vi.fn(),
    });
    expect(screen.getByText("Enter the code from your app")).toBeInTheDocument();
    const answer = screen.getByLabelText("Your answer");
    expect(answer).toHaveAttribute("type", "text");
    await fireEvent.input(answer, { target: { value: "123456" } });
    await fireEvent.click(screen.getByRole("button", { name: "Send" }));
    expect(onsubmit).toHaveBeenCalledWith(
      expect.objectContaining({ promptId: 9, challengeResponse: "123456", username: null, password: null }),
    );
  });

  it("asks for the key passphrase and cancels with Escape", async () => {
    const oncancel = vi.fn();
    render(CredentialsDialog, {
      prompt: { ...passwordPrompt, kind: { kind: "keyPassphrase" } },
      onsubmit: vi.fn(),
      oncancel,
    });
    expect(screen.getByRole("heading", { name: "Unlock your key" })).toBeInTheDocument();
    expect(screen.getByLabelText("Passphrase")).toHaveAttribute("type", "password");
    await fireEvent.keyDown(screen.getByRole("dialog"), { key: "Escape" });
    expect(oncancel).toHaveBeenCalled();
  });

  it("sends the key passphrase with the remember choice, and says why it asks again", async () => {
    const onsubmit = vi.fn();
    render(CredentialsDialog, {
      prompt: {
        ...passwordPrompt,
        kind: { kind: "keyPassphrase" },
        error: "The private key's passphrase is wrong.",
      },
      onsubmit,
      oncancel: vi.fn(),
    });
    expect(screen.getByRole("alert")).toHaveTextContent("passphrase is wrong");
    await fireEvent.input(screen.getByLabelText("Passphrase"), { target: { value: "open sesame" } });
    await fireEvent.click(screen.getByLabelText("Remember in the system keyring"));
    await fireEvent.click(screen.getByRole("button", { name: "Connect" }));
    expect(onsubmit).toHaveBeenCalledWith(
      expect.objectContaining({ promptId: 3, keyPassphrase: "open sesame", remember: true }),
    );
  });
});
