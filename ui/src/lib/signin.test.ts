import { describe, expect, it } from "vitest";
import { formatCountdown, isOpenable, secondsLeft } from "./signin";

describe("sign-in links", () => {
  it("offers only http and https links with a host", () => {
    expect(isOpenable("https://sso.example.com/auth?state=1")).toBe(true);
    expect(isOpenable("http://198.18.0.1:8080/signin?state=ab")).toBe(true);
    for (const bad of [
      "file:///etc/passwd",
      "javascript:alert(1)",
      "data:text/html,hi",
      "ftp://example.com/",
      "mailto:a@example.com",
      "https://user@evil.example/",
      "https://a.example/\nx",
      "https://a.example/ x",
      "not a link",
      "",
    ]) {
      expect(isOpenable(bad), bad).toBe(false);
    }
  });
});

describe("sign-in countdown", () => {
  it("counts whole seconds down to the server's deadline", () => {
    expect(secondsLeft(61_000, 1_000)).toBe(60);
    expect(secondsLeft(61_000, 60_001)).toBe(1);
    expect(secondsLeft(61_000, 61_000)).toBe(0);
    expect(secondsLeft(61_000, 90_000)).toBe(0);
    expect(secondsLeft(null, 1_000)).toBeNull();
  });

  it("formats minutes and hours", () => {
    expect(formatCountdown(245)).toBe("4:05");
    expect(formatCountdown(9)).toBe("0:09");
    expect(formatCountdown(3723)).toBe("1:02:03");
    expect(formatCountdown(-3)).toBe("0:00");
  });
});
