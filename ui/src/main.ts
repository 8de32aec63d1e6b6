import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";
import { startI18n } from "./lib/i18n";

// The system's language until the settings (which may name another) arrive.
startI18n(null);

const target = document.getElementById("app");
if (target) mount(App, { target });
