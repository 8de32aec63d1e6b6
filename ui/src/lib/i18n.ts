// The window's languages: svelte-i18n (ICU messages, plurals) over one JSON catalogue
// per language in src/locales. The system language is used unless Settings names one.
import { addMessages, getLocaleFromNavigator, init, locale } from "svelte-i18n";
import type { AppError } from "./bindings";
import de from "../locales/de.json";
import en from "../locales/en.json";
import fr from "../locales/fr.json";
import zhCN from "../locales/zh-CN.json";

/** Language tags we ship, with each language's own name. */
export const LANGUAGES: { tag: string; name: string }[] = [
  { tag: "en", name: "English" },
  { tag: "de", name: "Deutsch" },
  { tag: "fr", name: "Français" },
  { tag: "zh-CN", name: "简体中文" },
];

export const CATALOGUES: Record<string, Record<string, string>> = { en, de, fr, "zh-CN": zhCN };

/** The shipped language for a tag ("de-AT" -> "de", "zh-Hans-CN" -> "zh-CN"); English otherwise. */
export function supported(tag: string | null | undefined): string {
  const t = (tag ?? "").trim().toLowerCase().replace(/_/g, "-");
  if (t.startsWith("zh")) return t.includes("tw") || t.includes("hk") || t.includes("hant") ? "en" : "zh-CN";
  const base = t.split("-")[0];
  return LANGUAGES.some((l) => l.tag === base) ? base : "en";
}

/** The system's language as the web view reports it. */
export function systemLanguage(): string {
  return supported(getLocaleFromNavigator());
}

let started = false;

/** Loads the catalogues once and switches to `preferred` (null: the system's language). */
export function startI18n(preferred: string | null): string {
  const tag = preferred ? supported(preferred) : systemLanguage();
  if (!started) {
    for (const [t, messages] of Object.entries(CATALOGUES)) addMessages(t, messages);
    init({ fallbackLocale: "en", initialLocale: tag });
    started = true;
  } else {
    locale.set(tag);
  }
  return tag;
}

export type Translate = (key: string, options?: { values?: Record<string, string | number | boolean | null | undefined> }) => string;

/**
 * An error in the window's language. Errors carry a kind (the helper's and the app's
 * codes); English keeps the app's own sentence, which names specifics, and other
 * languages show the kind's translated sentence with the original under "Details".
 */
export function localError(t: Translate, lang: string, e: AppError): AppError {
  if (lang === "en") return e;
  const hint = t(`errors.${e.kind}.hint`);
  return {
    kind: e.kind,
    message: t(`errors.${e.kind}.message`),
    hint: hint ? hint : e.hint,
    details: `${e.message}${e.hint ? `\n${e.hint}` : ""}\n${e.details}`,
    missingFiles: e.missingFiles,
  };
}
