// Every language has every key, every message parses as ICU, every key the code uses
// exists, and plurals work. Prints the coverage per language (the issue note's figures).
import { IntlMessageFormat } from "intl-messageformat";
import { get } from "svelte/store";
import { _, locale } from "svelte-i18n";
import { afterAll, describe, expect, it } from "vitest";
import { CATALOGUES, LANGUAGES, localError, startI18n, supported } from "./i18n";

const en = CATALOGUES.en;
const englishKeys = Object.keys(en).sort();

/** The placeholder names of an ICU message (plural/select arguments included), sorted. */
function argNames(text: string, tag: string): string[] {
  const names = new Set<string>();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const walk = (els: any[]) => {
    for (const el of els) {
      if (el.type >= 1 && el.type <= 6) names.add(el.value);
      if (el.options) for (const o of Object.values(el.options)) walk((o as { value: unknown[] }).value);
      if (el.children) walk(el.children);
    }
  };
  walk(new IntlMessageFormat(text, tag).getAst());
  return [...names].sort();
}

/** The window's source files (tests left out), as text. */
const SOURCES: Record<string, string> = import.meta.glob(["../**/*.svelte", "../**/*.ts", "!../**/*.test.ts"], {
  query: "?raw",
  import: "default",
  eager: true,
});

describe("translations", () => {
  for (const { tag } of LANGUAGES) {
    it(`${tag} has exactly the English keys`, () => {
      const keys = Object.keys(CATALOGUES[tag]).sort();
      const missing = englishKeys.filter((k) => !(k in CATALOGUES[tag]));
      const extra = keys.filter((k) => !(k in en));
      expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    });

    it(`${tag}: every message is a valid ICU message with the English placeholders`, () => {
      for (const [key, text] of Object.entries(CATALOGUES[tag])) {
        expect(() => new IntlMessageFormat(text, tag), `${tag} ${key}`).not.toThrow();
        expect(argNames(text, tag), `${tag} ${key}`).toEqual(argNames(en[key], "en"));
        // A translation is never left empty where English has words.
        if (en[key] !== "") expect(text, `${tag} ${key}`).not.toBe("");
      }
    });
  }

  it("every key the window uses exists", () => {
    const used = new Set<string>();
    expect(Object.keys(SOURCES).length).toBeGreaterThan(10);
    for (const text of Object.values(SOURCES)) {
      for (const m of text.matchAll(/\$_\(\s*"([a-zA-Z0-9_.]+)"/g)) used.add(m[1]);
      for (const m of text.matchAll(/"((?:protection|routes|status|stage|import|profiles|details|errors)\.[a-zA-Z0-9_.]+)"/g)) used.add(m[1]);
    }
    expect(used.size).toBeGreaterThan(100);
    expect([...used].filter((k) => !(k in en))).toEqual([]);
    // Keys built at run time: a stage, verdict, state, auth kind or error kind each.
    for (const stage of ["credentials", "starting", "resolving", "connecting", "tls", "authenticating", "configuring", "reconnecting", "signIn", "waitingForService"])
      expect(en).toHaveProperty([`stage.${stage}`]);
  });

  it("plurals follow each language's rules", () => {
    startI18n("de");
    const t = get(_);
    expect(t("log.count", { values: { shown: 1, total: 1 } })).toBe("1 von 1 Zeile");
    expect(t("log.count", { values: { shown: 2, total: 5 } })).toBe("2 von 5 Zeilen");
    startI18n("fr");
    expect(get(_)("import.leftOut", { values: { count: 3 } })).toMatch(/^3 lignes ont été écartées/);
    startI18n("zh-CN");
    expect(get(_)("log.count", { values: { shown: 1, total: 1 } })).toBe("1 / 1 行");
    startI18n("en");
    expect(get(_)("import.leftOut", { values: { count: 1 } })).toMatch(/^One line was left out/);
    expect(get(locale)).toBe("en");
  });

  it("picks the shipped language for a system tag", () => {
    expect(supported("de-AT")).toBe("de");
    expect(supported("fr_CA")).toBe("fr");
    expect(supported("zh-Hans-CN")).toBe("zh-CN");
    expect(supported("zh-TW")).toBe("en");
    expect(supported("pt-BR")).toBe("en");
    expect(supported(null)).toBe("en");
  });

  it("helper errors are shown by their code in the chosen language", () => {
    startI18n("de");
    const e = localError(get(_), "de", {
      kind: "helperNotRunning",
      message: "The OxiVPN helper service is not running.",
      hint: "Start it",
      details: "cannot connect to /run/oxivpn.sock",
    });
    expect(e.message).toBe("Der OxiVPN-Helferdienst läuft nicht.");
    expect(e.details).toContain("cannot connect to /run/oxivpn.sock");
    startI18n("en");
  });

  it("no translated message names one OS's commands (the app runs on Windows and macOS too)", () => {
    // The back end's hint, in the words of the user's OS, stays under Details.
    for (const { tag } of LANGUAGES) {
      for (const [key, text] of Object.entries(CATALOGUES[tag])) {
        expect(`${key}: ${text}`).not.toMatch(/systemctl|journalctl|usermod|launchctl|sudo /);
      }
    }
  });

  afterAll(() => {
    const english = englishKeys.filter((k) => en[k] !== "").length;
    for (const { tag } of LANGUAGES) {
      const done = englishKeys.filter((k) => en[k] !== "" && (CATALOGUES[tag][k] ?? "") !== "").length;
      console.log(`translation coverage ${tag}: ${done}/${english} messages (${((100 * done) / english).toFixed(1)}%)`);
    }
  });
});
