//! Keyboard only: key events sent to the webview through WebDriver's actions (as a
//! keyboard would), and where the focus is after each, with its ring visible.

use anyhow::{bail, ensure, Context};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::Client;
use serde::Deserialize;

use crate::driver::{page_text, wd};

/// What has the keyboard focus.
#[derive(Debug, Deserialize)]
pub struct Focus {
    pub tag: String,
    /// Its visible text (buttons) or value (fields), trimmed.
    pub text: String,
    pub name: String,
    pub id: String,
    pub in_modal: bool,
    /// A focus indicator is drawn: an outline under `:focus-visible`, or a shadow.
    pub ring: bool,
}

const FOCUS: &str = r#"
const el = document.activeElement;
if (!el || el === document.body) return { tag: 'BODY', text: '', name: '', id: '', in_modal: false, ring: false };
const cs = getComputedStyle(el);
// A ring: an outline (buttons, :focus-visible) or the fields' focus shadow.
const outline = el.matches(':focus-visible') && cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0;
const field = ['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName);
const ring = outline || (field && cs.boxShadow !== 'none' && cs.boxShadow !== '');
return {
  tag: el.tagName,
  text: ((el.tagName === 'INPUT' ? el.value : el.innerText) || el.getAttribute('aria-label') || '').trim().slice(0, 80),
  name: el.getAttribute('name') || '',
  id: el.id || '',
  in_modal: !!el.closest('.modal'),
  ring,
};
"#;

pub async fn focus(c: &Client) -> anyhow::Result<Focus> {
    let v = wd("the focused element", c.execute(FOCUS, vec![])).await?;
    serde_json::from_value(v).context("the focused element")
}

/// Presses `key` (with Shift held when `shift`), as one key down and up.
pub async fn press(c: &Client, key: Key, shift: bool) -> anyhow::Result<()> {
    let k: char = key.into();
    let shift_key: char = Key::Shift.into();
    let mut seq = KeyActions::new("keyboard".into());
    if shift {
        seq = seq.then(KeyAction::Down { value: shift_key });
    }
    seq = seq
        .then(KeyAction::Down { value: k })
        .then(KeyAction::Up { value: k });
    if shift {
        seq = seq.then(KeyAction::Up { value: shift_key });
    }
    wd(&format!("press {key:?}"), c.perform_actions(seq)).await?;
    wd("release keys", c.release_actions()).await
}

/// Types `text` into whatever has the focus, key by key.
pub async fn type_text(c: &Client, text: &str) -> anyhow::Result<()> {
    let mut seq = KeyActions::new("keyboard".into());
    for ch in text.chars() {
        seq = seq
            .then(KeyAction::Down { value: ch })
            .then(KeyAction::Up { value: ch });
    }
    wd("type", c.perform_actions(seq)).await
}

/// Presses Tab (or Shift+Tab) until the focus satisfies `want`, at most `max` times;
/// every element on the way must show its focus ring.
pub async fn tab_to(
    c: &Client,
    what: &str,
    shift: bool,
    max: usize,
    want: impl Fn(&Focus) -> bool,
) -> anyhow::Result<Focus> {
    let mut path = Vec::new();
    for _ in 0..max {
        press(c, Key::Tab, shift).await?;
        let f = focus(c).await?;
        ensure!(
            f.tag == "BODY" || f.ring,
            "focus on {} {:?} shows no focus ring (after {})",
            f.tag,
            f.text,
            path.join(" → ")
        );
        path.push(format!("{} {:?}", f.tag, f.text));
        if want(&f) {
            eprintln!(
                "webview e2e: keyboard: {} Tab to {what}: {}",
                path.len(),
                path.join(" → ")
            );
            return Ok(f);
        }
    }
    bail!(
        "{what} not reached in {max} Tab presses: {}; page:\n{}",
        path.join(" → "),
        page_text(c).await
    )
}
