//! {{name}}: a skillplug plugin (VT Code native plugin ABI v1).

use vtcode_plugin_sdk::{export_plugin, Context, Metadata, Plugin, PluginResult, Value};

struct Skill;

impl Plugin for Skill {
    // plugin.json is the one place for the name, description and version; cargo rebuilds when it changes.
    fn metadata() -> Metadata {
        Metadata::from_plugin_json(include_str!("../plugin.json"))
    }

    fn execute(ctx: Context) -> PluginResult {
        let text = ctx.input.get("text").and_then(Value::as_str).unwrap_or("");
        PluginResult::ok(Value::object([("chars", Value::from(text.chars().count()))]))
    }
}

export_plugin!(Skill);
