import { render, screen, within } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { ConnState, ProfileSummary } from "../../lib/bindings";
import ProfileList from "../ProfileList.svelte";

const p = (id: string, name: string): ProfileSummary => ({ id, name, server: `${id}.example.com:1194`, protocol: "UDP", auth: "certificate" });

describe("ProfileList", () => {
  it("shows each session's state next to its profile", () => {
    const conns: ConnState[] = [
      {
        state: "connected",
        session: {
          profileId: "a",
          profileName: "Lab",
          server: null,
          cipher: null,
          tls: null,
          killSwitch: null,
          tunnelIpv4: "10.8.0.2",
          tunnelIpv6: null,
          interface: null,
          connectedSinceMs: 1,
          protection: null,
        },
      },
      {
        state: "connecting",
        profileId: "b",
        profileName: "Office",
        stage: { kind: "tls", label: "Securing the connection", detail: null, step: 4, total: 7, signIn: null },
      },
    ];
    render(ProfileList, { profiles: [p("a", "Lab"), p("b", "Office"), p("c", "Home")], selected: "a", conns, onselect: vi.fn() });
    const items = screen.getAllByRole("listitem");
    expect(within(items[0]).getByTestId("profile-state")).toHaveTextContent("Connected");
    expect(within(items[1]).getByTestId("profile-state")).toHaveTextContent("Connecting…");
    expect(within(items[2]).queryByTestId("profile-state")).toBeNull();
  });
});
