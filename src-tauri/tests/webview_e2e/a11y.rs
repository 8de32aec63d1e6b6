//! Accessibility: axe-core (ui/node_modules/axe-core, a devDependency of the UI) run
//! inside the real webview on each view the scenario reaches. Every violation is
//! printed with its rule, element and help text; serious and critical ones fail the
//! test at the end, all views' findings together, so one run shows them all.

use std::path::PathBuf;

use anyhow::{bail, Context};
use fantoccini::Client;
use serde::Deserialize;

use crate::driver::wd;

/// axe's rule sets for WCAG 2.1 A and AA, plus its best practices.
const RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, {
  runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  resultTypes: ['violations'],
}).then(r => done(JSON.stringify(r.violations.map(v => ({
  id: v.id, impact: v.impact || '', help: v.help,
  nodes: v.nodes.map(n => ({ target: n.target.join(' '), html: n.html.slice(0, 160) })),
}))))).catch(e => done(JSON.stringify([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }])));
"#;

#[derive(Debug, Deserialize)]
struct Violation {
    id: String,
    impact: String,
    help: String,
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
struct Node {
    target: String,
    html: String,
}

/// What the views checked so far found.
pub struct Axe {
    source: String,
    views: Vec<String>,
    serious: Vec<String>,
}

impl Axe {
    /// Reads axe.min.js from the UI's node_modules (`npm --prefix ui ci` puts it there).
    pub fn load() -> anyhow::Result<Self> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../ui/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (run `npm --prefix ui ci`; axe-core is a devDependency of ui/)",
                path.display()
            )
        })?;
        Ok(Self {
            source,
            views: Vec::new(),
            serious: Vec::new(),
        })
    }

    /// Runs axe on what the window shows now, as `view`.
    pub async fn check(&mut self, c: &Client, view: &str) -> anyhow::Result<()> {
        let present = wd(
            "is axe loaded",
            c.execute("return typeof window.axe === 'object'", vec![]),
        )
        .await?;
        if present != serde_json::Value::Bool(true) {
            wd(
                "inject axe-core",
                c.execute(&format!("{}\nreturn true;", self.source), vec![]),
            )
            .await?;
        }
        let out = wd("axe.run", c.execute_async(RUN, vec![])).await?;
        let text = out.as_str().context("axe returned no JSON text")?;
        let found: Vec<Violation> = serde_json::from_str(text).context("axe's result")?;
        let (mut minor, mut bad) = (0, 0);
        for v in &found {
            let serious = matches!(v.impact.as_str(), "serious" | "critical");
            for n in &v.nodes {
                let line = format!(
                    "[{view}] {} ({}): {} — {} — {}",
                    v.id, v.impact, v.help, n.target, n.html
                );
                eprintln!("webview e2e: axe {line}");
                if serious {
                    self.serious.push(line);
                }
            }
            if v.nodes.is_empty() {
                let line = format!("[{view}] {} ({}): {}", v.id, v.impact, v.help);
                eprintln!("webview e2e: axe {line}");
                if serious {
                    self.serious.push(line);
                }
            }
            if serious {
                bad += 1;
            } else {
                minor += 1;
            }
        }
        eprintln!(
            "webview e2e: axe [{view}]: {bad} serious/critical rules, {minor} minor/moderate"
        );
        self.views.push(view.to_owned());
        Ok(())
    }

    /// Fails when any view had a serious or critical violation.
    pub fn verdict(&self) -> anyhow::Result<()> {
        eprintln!(
            "webview e2e: axe checked {} views: {}",
            self.views.len(),
            self.views.join(", ")
        );
        if !self.serious.is_empty() {
            bail!(
                "axe-core: {} serious/critical violations:\n{}",
                self.serious.len(),
                self.serious.join("\n")
            );
        }
        Ok(())
    }
}
