import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { MissingFilesView } from "../../lib/bindings";
import MissingFilesDialog from "../MissingFilesDialog.svelte";

const missing: MissingFilesView = {
  profilePath: "/home/ann/Downloads/office.ovpn",
  files: [
    { directive: "ca", name: "ca.crt", line: 4, looked: ["/home/ann/Downloads/ca.crt"] },
    { directive: "key", name: "keys/ann.key", line: 6, looked: ["/home/ann/Downloads/keys/ann.key"] },
  ],
};

describe("MissingFilesDialog", () => {
  it("asks for each file by the name the profile writes, then imports with the picks", async () => {
    const onpick = vi
      .fn()
      .mockResolvedValueOnce({ ok: "/media/usb/ca.crt" })
      .mockResolvedValueOnce({ ok: null }) // the user cancelled the second dialog once
      .mockResolvedValueOnce({ ok: "/media/usb/ann.key" });
    const onimport = vi.fn().mockResolvedValue({ ok: { fileName: "office.ovpn" } });
    const onclose = vi.fn();
    render(MissingFilesDialog, { missing, onpick, onimport, onclose });

    expect(screen.getByText(/office\.ovpn names 2 files/)).toBeInTheDocument();
    expect(screen.getByText("ca, line 4")).toBeInTheDocument();
    const importButton = screen.getByRole("button", { name: "Import" });
    expect(importButton).toBeDisabled();

    await fireEvent.click(screen.getByRole("button", { name: "Choose the file for ca.crt" }));
    expect(onpick).toHaveBeenLastCalledWith("ca.crt");
    expect(await screen.findByText("/media/usb/ca.crt")).toBeInTheDocument();
    expect(importButton).toBeDisabled();

    const keyButton = screen.getByRole("button", { name: "Choose the file for keys/ann.key" });
    await fireEvent.click(keyButton);
    expect(screen.getByTestId("chosen-keys/ann.key")).toHaveTextContent("Not chosen yet");
    await fireEvent.click(keyButton);
    expect(await screen.findByText("/media/usb/ann.key")).toBeInTheDocument();
    expect(importButton).toBeEnabled();

    await fireEvent.click(importButton);
    expect(onimport).toHaveBeenCalledWith("/home/ann/Downloads/office.ovpn", [
      { name: "ca.crt", path: "/media/usb/ca.crt" },
      { name: "keys/ann.key", path: "/media/usb/ann.key" },
    ]);
    await vi.waitFor(() => expect(onclose).toHaveBeenCalled());
  });

  it("keeps the dialog open and shows why when the picked file is wrong", async () => {
    const onpick = vi.fn().mockResolvedValue({ ok: "/tmp/x" });
    const onimport = vi.fn().mockResolvedValue({
      error: { kind: "profileRejected", message: "ca: not a certificate", hint: null, details: "line 4" },
    });
    const onclose = vi.fn();
    render(MissingFilesDialog, { missing: { ...missing, files: [missing.files[0]] }, onpick, onimport, onclose });
    await fireEvent.click(screen.getByRole("button", { name: "Choose the file for ca.crt" }));
    await screen.findByText("/tmp/x");
    await fireEvent.click(screen.getByRole("button", { name: "Import" }));
    expect(await screen.findByText("ca: not a certificate")).toBeInTheDocument();
    expect(onclose).not.toHaveBeenCalled();
  });
});
