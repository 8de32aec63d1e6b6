import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { ConnState, ProfileSummary } from "../../lib/bindings";
import StatusView from "../StatusView.svelte";

const profile: ProfileSummary = { id: "p1", name: "Work", server: "vpn.example.com:1194", protocol: "UDP", auth: "certificate" };

function show(state: ConnState, extra: Record<string, unknown> = {}) {
  const onconnect = vi.fn();
  const ondisconnect = vi.fn();
  render(StatusView, { state, profile, stats: [], onconnect, ondisconnect, ...extra });
  return { onconnect, ondisconnect };
}

describe("StatusView", () => {
  it("connects with one click when disconnected", async () => {
    const { onconnect } = show({ state: "disconnected" });
    expect(screen.getByRole("status")).toHaveTextContent("Not connected");
    await fireEvent.click(screen.getByRole("button", { name: "Connect" }));
    expect(onconnect).toHaveBeenCalledWith("p1");
  });

  it("shows the stage and progress while connecting", async () => {
    const { ondisconnect } = show({
      state: "connecting",
      profileId: "p1",
      profileName: "Work",
      stage: { kind: "tls", label: "Securing the connection", detail: null, step: 4, total: 7, signIn: null },
    });
    expect(screen.getByText("Securing the connection")).toBeInTheDocument();
    expect(screen.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "4");
    await fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(ondisconnect).toHaveBeenCalled();
  });

  it("shows address, server, cipher, duration and traffic when connected", () => {
    show(
      {
        state: "connected",
        session: {
          profileId: "p1",
          profileName: "Work",
          server: "udp 198.18.0.1:1194",
          cipher: "AES-256-GCM",
          tls: "TLSv1.3 TLS13_AES_256_GCM_SHA384",
          killSwitch: true,
          tunnelIpv4: "10.8.0.2",
          tunnelIpv6: null,
          interface: "tun0",
          connectedSinceMs: 1_000_000,
          protection: { requested: { killSwitch: "automatic", allowLan: false }, source: "global", killSwitchActive: true },
        },
      },
      {
        now: 1_065_000,
        stats: [
          { profileId: "p1", atMs: 1_000_000, bytesIn: 0, bytesOut: 0 },
          { profileId: "p1", atMs: 1_001_000, bytesIn: 2_500_000, bytesOut: 125_000 },
        ],
      },
    );
    expect(screen.getByRole("status")).toHaveTextContent("Connected");
    expect(screen.getByText("10.8.0.2")).toBeInTheDocument();
    expect(screen.getByText("udp 198.18.0.1:1194")).toBeInTheDocument();
    expect(screen.getByText("AES-256-GCM")).toBeInTheDocument();
    expect(screen.getByText("TLSv1.3 TLS13_AES_256_GCM_SHA384")).toBeInTheDocument();
    expect(screen.getByTestId("protection")).toHaveTextContent(
      "Kill switch on: nothing leaves outside the VPN — automatic (your global setting): all your traffic goes through the VPN.",
    );
    expect(screen.getByText("1:05")).toBeInTheDocument();
    expect(screen.getByText("2.50 MB")).toBeInTheDocument();
    expect(screen.getByText("125 KB")).toBeInTheDocument();
    expect(screen.getByText("Download 20.0 Mbit/s")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Disconnect" })).toBeInTheDocument();
  });

  it("explains a failure in words and reveals the details on request", async () => {
    show({
      state: "failed",
      profileId: "p1",
      profileName: "Work",
      error: {
        kind: "helperNotPermitted",
        message: "You are not allowed to use the OxiVPN helper.",
        hint: "Add yourself to the oxivpn group (\"sudo usermod -aG oxivpn $USER\"), then log out and back in.",
        details: "uid 1000 may not use the OxiVPN helper",
      },
    });
    expect(screen.getByRole("alert")).toHaveTextContent("You are not allowed to use the OxiVPN helper.");
    expect(screen.getByText(/usermod -aG oxivpn/)).toBeInTheDocument();
    expect(screen.queryByText("uid 1000 may not use the OxiVPN helper")).toBeNull();
    await fireEvent.click(screen.getByRole("button", { name: "Details" }));
    expect(screen.getByText("uid 1000 may not use the OxiVPN helper")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });

  it("does not show another profile's connection as its own", () => {
    show({
      state: "connecting",
      profileId: "other",
      profileName: "Home",
      stage: { kind: "tls", label: "Securing the connection", detail: null, step: 4, total: 7, signIn: null },
    });
    expect(screen.getByRole("status")).toHaveTextContent("Not connected");
  });

  it("says which other profiles are up and that this one connects alongside", () => {
    show(
      { state: "disconnected" },
      {
        others: [
          {
            state: "connecting",
            profileId: "other",
            profileName: "Home",
            stage: { kind: "tls", label: "Securing the connection", detail: null, step: 4, total: 7, signIn: null },
          },
        ],
      },
    );
    expect(screen.getByTestId("others")).toHaveTextContent("Also up: Home. This profile connects alongside");
    expect(screen.getByRole("button", { name: "Connect" })).toBeInTheDocument();
  });
});

describe("StatusView in other languages", () => {
  it("speaks the chosen language, stage and error included", async () => {
    const { startI18n } = await import("../../lib/i18n");
    startI18n("fr");
    try {
      show({
        state: "connecting",
        profileId: "p1",
        profileName: "Work",
        stage: { kind: "tls", label: "Securing the connection", detail: null, step: 4, total: 7, signIn: null },
      });
      expect(screen.getByText("Sécurisation de la connexion")).toBeInTheDocument();
      expect(screen.getByRole("button", { name: "Annuler" })).toBeInTheDocument();
    } finally {
      startI18n("en");
    }
  });

  const signIn = (url: string, extra: Record<string, unknown> = {}): ConnState => ({
    state: "connecting",
    profileId: "p1",
    profileName: "Work",
    stage: {
      kind: "signIn",
      label: "Waiting for sign-in",
      detail: "sso.example.com",
      step: 5,
      total: 7,
      signIn: {
        profileId: "p1",
        url,
        host: "sso.example.com",
        timeoutSecs: 120,
        deadlineMs: 1_120_000,
        killSwitchException: true,
        opened: true,
        refusal: null,
        ...extra,
      },
    },
  });

  it("shows the sign-in step: host, countdown, open again, cancel", async () => {
    const onopensignin = vi.fn();
    const { ondisconnect } = show(signIn("https://sso.example.com/auth?state=1"), { now: 1_054_500, onopensignin });
    expect(screen.getByText("Waiting for sign-in")).toBeInTheDocument();
    expect(screen.getByTestId("sign-in-host")).toHaveTextContent("sso.example.com");
    expect(screen.getByTestId("sign-in-countdown")).toHaveTextContent("Time left: 1:06");
    expect(screen.getByText(/kill switch lets only sso.example.com through/)).toBeInTheDocument();
    await fireEvent.click(screen.getByRole("button", { name: "Open again" }));
    expect(onopensignin).toHaveBeenCalledWith("p1");
    await fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(ondisconnect).toHaveBeenCalled();
  });

  it("copies the link", async () => {
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    show(signIn("https://sso.example.com/auth?state=1"), { now: 1_000_000 });
    await fireEvent.click(screen.getByRole("button", { name: "Copy link" }));
    expect(writeText).toHaveBeenCalledWith("https://sso.example.com/auth?state=1");
    expect(await screen.findByText("Link copied.")).toBeInTheDocument();
  });

  it("says when the server's time has run out", () => {
    show(signIn("https://sso.example.com/auth"), { now: 1_200_000 });
    expect(screen.getByTestId("sign-in-countdown")).toHaveTextContent("time for signing in has run out");
  });

  it("never offers a link that is not http or https", () => {
    const onopensignin = vi.fn();
    show(signIn("file:///etc/passwd", { opened: false }), { now: 1_000_000, onopensignin });
    expect(screen.getByTestId("sign-in-refused")).toHaveTextContent("not an http or https link");
    expect(screen.queryByRole("button", { name: "Open again" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Copy link" })).toBeNull();
    expect(screen.queryByDisplayValue("file:///etc/passwd")).toBeNull();
    expect(onopensignin).not.toHaveBeenCalled();
  });
});
