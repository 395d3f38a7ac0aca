//! For a plugin's build script: checks plugin.json when cargo builds.
//!
//! ```ignore
//! // build.rs
//! fn main() {
//!     vtcode_plugin_sdk::build::check_plugin_json();
//! }
//! ```

use crate::plugin_json::metadata_from_plugin_json;
use std::path::Path;

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

/// Fails the build when `plugin.json` (beside Cargo.toml) cannot serve as the plugin's metadata,
/// warns when cargo would name the library differently from plugin.json's `name`, and has cargo
/// rerun it when plugin.json changes.
pub fn check_plugin_json() {
    println!("cargo:rerun-if-changed=plugin.json");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let file = Path::new(&dir).join("plugin.json");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", file.display())));
    let metadata = metadata_from_plugin_json(&text).unwrap_or_else(|problem| fail(&format!("{}: {problem}", file.display())));
    // Cargo names the cdylib after the package with "-" as "_"; skillplug looks for plugin.json's name that way.
    if let Ok(package) = std::env::var("CARGO_PKG_NAME") {
        let built = package.replace('-', "_");
        let wanted: String = metadata.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        if built != wanted {
            println!("cargo:warning=plugin.json names the plugin \"{}\" but the package is \"{package}\", so cargo builds lib{built} and skillplug looks for lib{wanted}: rename the package in Cargo.toml", metadata.name);
        }
    }
}
