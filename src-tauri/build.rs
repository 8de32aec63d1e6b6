use std::path::Path;

fn main() {
    // generate_context! embeds ui/dist. `cargo xtask test` builds it first; a plain
    // `cargo build --workspace` without Node gets a page that says what to do instead
    // of a compile error in someone else's crate.
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist");
    if !dist.join("index.html").exists() {
        let _ = std::fs::create_dir_all(&dist);
        let _ = std::fs::write(
            dist.join("index.html"),
            "<!doctype html><meta charset=utf-8><title>OxiVPN</title>\
             <p>The user interface was not built. Run <code>npm --prefix ui ci &amp;&amp; \
             npm --prefix ui run build</code>, then build the app again.</p>",
        );
    }
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::build();
}
