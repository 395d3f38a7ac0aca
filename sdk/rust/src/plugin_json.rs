//! plugin.json as the one place for a plugin's name, description, version and schema.
//!
//! `Metadata::from_plugin_json(include_str!("../plugin.json"))` gives the library the metadata
//! plugin.json holds (cargo rebuilds when the file changes), and [`crate::build::check_plugin_json`]
//! in a build script refuses a plugin.json that could not serve as metadata at compile time.

use crate::json::Value;
use crate::{Metadata, ABI_VERSION};

fn optional_string(object: &Value, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

fn required_string(object: &Value, key: &str) -> Result<String, String> {
    match optional_string(object, key)? {
        Some(s) if !s.is_empty() || key == "description" => Ok(s),
        _ => Err(format!("\"{key}\" is missing or empty")),
    }
}

/// The metadata plugin.json's text holds, or why it cannot be metadata.
pub fn metadata_from_plugin_json(text: &str) -> Result<Metadata, String> {
    let value = Value::parse(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if value.as_object().is_none() {
        return Err("must hold a JSON object".into());
    }
    let mut metadata = Metadata::new(&required_string(&value, "name")?, &required_string(&value, "description")?, &required_string(&value, "version")?);
    match value.get("abi_version") {
        None => {}
        Some(v) if v.as_u64() == Some(ABI_VERSION as u64) => {}
        Some(v) => return Err(format!("\"abi_version\" is {v}; this SDK speaks ABI {ABI_VERSION}")),
    }
    metadata.author = optional_string(&value, "author")?;
    metadata.when_to_use = optional_string(&value, "when_to_use")?;
    metadata.when_not_to_use = optional_string(&value, "when_not_to_use")?;
    match value.get("allowed_tools") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let tools = v.as_array().filter(|a| a.iter().all(|t| t.as_str().is_some())).ok_or("\"allowed_tools\" must be an array of strings")?;
            metadata.allowed_tools = tools.iter().filter_map(Value::as_str).map(str::to_string).collect();
        }
    }
    match value.get("thread_safe") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(yes)) => metadata.thread_safe = *yes,
        Some(_) => return Err("\"thread_safe\" must be true or false".into()),
    }
    Ok(metadata)
}

impl Metadata {
    /// The metadata in plugin.json's text, usually `include_str!("../plugin.json")`. Panics with
    /// the reason when it cannot be metadata; the SDK reports that panic with the load error.
    pub fn from_plugin_json(text: &str) -> Metadata {
        metadata_from_plugin_json(text).unwrap_or_else(|problem| panic!("plugin.json: {problem}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_metadata_field_from_plugin_json() {
        let m = Metadata::from_plugin_json(r#"{"name":"wc","description":"Counts \"words\"","version":"2.1.0","abi_version":1,"thread_safe":true,"allowed_tools":["read"],"input_schema":{"type":"object"}}"#);
        assert_eq!((m.name.as_str(), m.description.as_str(), m.version.as_str()), ("wc", "Counts \"words\"", "2.1.0"));
        assert!(m.thread_safe);
        assert_eq!(m.allowed_tools, vec!["read".to_string()]);
    }

    #[test]
    fn refuses_what_cannot_be_metadata() {
        for bad in ["", "[]", r#"{"description":"d","version":"1"}"#, r#"{"name":"n","description":"d","version":1}"#, r#"{"name":"n","description":"d","version":"1","abi_version":2}"#, r#"{"name":"n","description":"d","version":"1","thread_safe":"yes"}"#] {
            assert!(metadata_from_plugin_json(bad).is_err(), "{bad}");
        }
    }
}
