import { fireEvent, render, screen, within } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { ImportReport as Report } from "../../lib/bindings";
import ImportReport from "../ImportReport.svelte";

const good: Report = {
  fileName: "work.ovpn",
  usable: true,
  reason: null,
  profile: { id: "p1", name: "work", server: "vpn.example.com:1194", protocol: "UDP", auth: "password" },
  findings: [
    { line: 1, directive: "client", verdict: "honoured", message: "Client mode." },
    { line: 4, directive: "remote", verdict: "honoured", message: "Server vpn.example.com port 1194." },
    { line: 7, directive: "up", verdict: "refused", message: "Would run /etc/openvpn/update-resolv-conf as root." },
    { line: 9, directive: "persist-tun", verdict: "ignored", message: "OxiVPN always keeps the tunnel during reconnects." },
  ],
};

describe("ImportReport", () => {
  it("summarises the import and lists findings with line numbers", () => {
    render(ImportReport, { report: good, onclose: vi.fn() });
    expect(screen.getByRole("heading", { name: "Imported “work”" })).toBeInTheDocument();
    expect(screen.getByText(/One line was left out/)).toBeInTheDocument();
    const rows = screen.getAllByRole("row").slice(1);
    expect(rows).toHaveLength(4);
    const refused = rows[2];
    expect(within(refused).getByText("7")).toBeInTheDocument();
    expect(within(refused).getByText("up")).toBeInTheDocument();
    expect(within(refused).getByText("Refused")).toBeInTheDocument();
    expect(within(refused).getByText(/update-resolv-conf/)).toBeInTheDocument();
  });

  it("filters by verdict", async () => {
    render(ImportReport, { report: good, onclose: vi.fn() });
    await fireEvent.click(screen.getByRole("button", { name: /Ignored/ }));
    const rows = screen.getAllByRole("row").slice(1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toHaveTextContent("persist-tun");
    await fireEvent.click(screen.getByRole("button", { name: /All/ }));
    expect(screen.getAllByRole("row")).toHaveLength(5);
  });

  it("offers to connect a usable profile", async () => {
    const onconnect = vi.fn();
    render(ImportReport, { report: good, onclose: vi.fn(), onconnect });
    await fireEvent.click(screen.getByRole("button", { name: "Connect now" }));
    expect(onconnect).toHaveBeenCalledWith("p1");
  });

  it("explains a failed import and offers no connect", async () => {
    const onclose = vi.fn();
    render(ImportReport, {
      report: {
        fileName: "broken.ovpn",
        usable: false,
        reason: "line 3: unterminated <ca> block",
        profile: null,
        findings: [{ line: 3, directive: "", verdict: "problem", message: "The <ca> block is never closed." }],
      },
      onclose,
      onconnect: vi.fn(),
    });
    expect(screen.getByRole("heading", { name: "Could not import broken.ovpn" })).toBeInTheDocument();
    expect(screen.getByText("line 3: unterminated <ca> block")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Connect now" })).toBeNull();
    await fireEvent.keyDown(screen.getByRole("dialog"), { key: "Escape" });
    expect(onclose).toHaveBeenCalled();
  });
});
