// What the window says about the kill switch: the user's choice, where it came from,
// and what the helper actually put in force. Pure (the translation is passed in), so
// vitest checks every case.
import type { KillSwitchChoice, Protection, ProtectionView, Settings } from "./bindings";
import type { Translate } from "./i18n";

/** Each choice with its label and help keys in the catalogue. */
export const KILL_SWITCH_CHOICES: [KillSwitchChoice, string, string][] = [
  ["automatic", "protection.automatic", "protection.automaticHelp"],
  ["always", "protection.alwaysLabel", "protection.alwaysHelp"],
  ["off", "protection.offLabel", "protection.offHelp"],
];

export function choiceLabel(t: Translate, c: KillSwitchChoice): string {
  const key = KILL_SWITCH_CHOICES.find(([k]) => k === c)?.[1];
  return key ? t(key) : c;
}

/** The protection a profile uses: its own, or the global one. */
export function protectionFor(settings: Settings, profileId: string): { protection: Protection; own: boolean } {
  const own = settings.profileProtection[profileId];
  return own ? { protection: own, own: true } : { protection: settings.protection, own: false };
}

/** One line for the connection view: what is in force, and why. */
export function protectionLine(t: Translate, view: ProtectionView | null, killSwitch: boolean | null): string {
  const active = view?.killSwitchActive ?? killSwitch;
  if (active === null) return t("protection.notReported");
  const state = t(active ? "protection.on" : "protection.off");
  if (!view) return state;
  const where = t(view.source === "profile" ? "protection.whereProfile" : "protection.whereGlobal");
  const key =
    view.requested.killSwitch === "automatic"
      ? active
        ? "protection.autoFull"
        : "protection.autoSplit"
      : view.requested.killSwitch === "always"
        ? "protection.always"
        : "protection.offWhy";
  const why = t(key, { values: { where } });
  const lan = active && view.requested.allowLan ? t("protection.lan") : "";
  return t("protection.line", { values: { state, why, lan } });
}
