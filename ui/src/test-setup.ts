import "@testing-library/jest-dom/vitest";
import { startI18n } from "./lib/i18n";

// Components are tested in English; the catalogue test checks the other languages.
startI18n("en");
