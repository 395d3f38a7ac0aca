//! Write VT Code native plugins (ABI v1) in safe Rust.
//!
//! Implement [`Plugin`] and call [`export_plugin!`] once: the macro exports the four ABI symbols,
//! hands out heap strings that the host gives back to `vtcode_plugin_free_string`, and turns a
//! panic into `{"success":false,...}` instead of unwinding across the FFI boundary.
//!
//! ```ignore
//! use vtcode_plugin_sdk::{export_plugin, Context, Metadata, Plugin, PluginResult, Value};
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     fn metadata() -> Metadata {
//!         Metadata::new("hello", "Greets someone", env!("CARGO_PKG_VERSION"))
//!     }
//!     fn execute(ctx: Context) -> PluginResult {
//!         let name = ctx.input.get("name").and_then(Value::as_str).unwrap_or("world");
//!         PluginResult::ok(Value::object([("greeting", Value::from(format!("Hello, {name}!")))]))
//!     }
//! }
//! export_plugin!(Hello);
//! ```

pub mod build;
pub mod json;
pub mod plugin_json;

pub use json::Value;

/// The ABI version this SDK speaks.
pub const ABI_VERSION: u32 = 1;

/// What the plugin tells the host about itself.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub name: String,
    pub description: String,
    pub version: String,
    pub author: Option<String>,
    pub when_to_use: Option<String>,
    pub when_not_to_use: Option<String>,
    pub allowed_tools: Vec<String>,
    /// Set only if `execute` may run on several threads at once.
    pub thread_safe: bool,
}

impl Metadata {
    /// Metadata with the required fields; the rest default to empty and not thread-safe.
    pub fn new(name: &str, description: &str, version: &str) -> Metadata {
        Metadata {
            name: name.into(),
            description: description.into(),
            version: version.into(),
            author: None,
            when_to_use: None,
            when_not_to_use: None,
            allowed_tools: Vec::new(),
            thread_safe: false,
        }
    }

    pub fn author(mut self, author: &str) -> Self {
        self.author = Some(author.into());
        self
    }

    pub fn when_to_use(mut self, text: &str) -> Self {
        self.when_to_use = Some(text.into());
        self
    }

    pub fn when_not_to_use(mut self, text: &str) -> Self {
        self.when_not_to_use = Some(text.into());
        self
    }

    pub fn allowed_tools(mut self, tools: &[&str]) -> Self {
        self.allowed_tools = tools.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn thread_safe(mut self, yes: bool) -> Self {
        self.thread_safe = yes;
        self
    }

    /// The metadata JSON of ABI v1.
    pub fn to_json(&self) -> String {
        let opt = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
        Value::object([
            ("name", Value::from(self.name.as_str())),
            ("description", Value::from(self.description.as_str())),
            ("version", Value::from(self.version.as_str())),
            ("author", opt(&self.author)),
            ("abi_version", Value::from(ABI_VERSION as u64)),
            ("when_to_use", opt(&self.when_to_use)),
            ("when_not_to_use", opt(&self.when_not_to_use)),
            ("allowed_tools", Value::from(self.allowed_tools.clone())),
            ("thread_safe", Value::from(self.thread_safe)),
        ])
        .to_string()
    }
}

/// One call's context.
#[derive(Debug, Clone)]
pub struct Context {
    /// The tool input (a JSON object).
    pub input: Value,
    /// The workspace root, when the host has one.
    pub workspace_root: Option<String>,
    /// Per-plugin configuration (a JSON object).
    pub config: Value,
}

impl Context {
    /// Parses the context JSON the host passes.
    pub fn parse(text: &str) -> Result<Context, String> {
        let value = Value::parse(text)?;
        let input = value.get("input").cloned().unwrap_or(Value::Object(Vec::new()));
        let config = value.get("config").cloned().unwrap_or(Value::Object(Vec::new()));
        let workspace_root = value.get("workspace_root").and_then(Value::as_str).map(str::to_string);
        Ok(Context { input, workspace_root, config })
    }
}

/// What a call returns.
#[derive(Debug, Clone)]
pub struct PluginResult {
    pub success: bool,
    pub output: Value,
    pub error: Option<String>,
    pub files: Vec<String>,
}

impl PluginResult {
    /// A successful result.
    pub fn ok(output: Value) -> PluginResult {
        PluginResult { success: true, output, error: None, files: Vec::new() }
    }

    /// A failed result with a message and an empty output object.
    pub fn error(message: impl Into<String>) -> PluginResult {
        PluginResult { success: false, output: Value::Object(Vec::new()), error: Some(message.into()), files: Vec::new() }
    }

    /// Adds files the plugin wrote or points at.
    pub fn with_files(mut self, files: impl IntoIterator<Item = String>) -> Self {
        self.files.extend(files);
        self
    }

    /// The result JSON of ABI v1.
    pub fn to_json(&self) -> String {
        Value::object([
            ("success", Value::from(self.success)),
            ("output", self.output.clone()),
            ("error", self.error.clone().map(Value::String).unwrap_or(Value::Null)),
            ("files", Value::from(self.files.clone())),
        ])
        .to_string()
    }
}

/// A plugin: metadata and one entry point.
pub trait Plugin {
    fn metadata() -> Metadata;
    fn execute(ctx: Context) -> PluginResult;
}

/// The glue [`export_plugin!`] expands to. Not for direct use.
#[doc(hidden)]
pub mod ffi {
    use super::{Context, Plugin, PluginResult};
    use std::ffi::{CStr, CString};
    use std::os::raw::c_char;
    use std::cell::RefCell;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::Once;

    fn into_raw(text: String) -> *const c_char {
        // JSON escapes NUL, so this only fails on a bug; fall back to a valid envelope.
        CString::new(text)
            .unwrap_or_else(|_| CString::new(PluginResult::error("plugin produced a NUL byte").to_json()).unwrap())
            .into_raw()
    }

    fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string())
    }

    thread_local! {
        // What the panic hook saw of this thread's last panic: the message and where it happened.
        pub(crate) static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    }
    static HOOK: Once = Once::new();

    // The payload alone has no location; a hook sees it. It records instead of printing, since the
    // panic is reported in the result (a cdylib has its own copy of std, so this hook is this plugin's).
    fn install_panic_hook() {
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let at = info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
                let text = format!("{}{}", panic_message(info.payload()), at);
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(text));
            }));
        });
    }

    /// The last panic's message and location, e.g. `index out of bounds: … at src/lib.rs:12:9`.
    fn describe_panic(payload: &(dyn std::any::Any + Send)) -> String {
        LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap_or_else(|| panic_message(payload))
    }

    pub fn metadata<P: Plugin>() -> *const c_char {
        install_panic_hook();
        match catch_unwind(P::metadata) {
            Ok(metadata) => into_raw(metadata.to_json()),
            Err(payload) => {
                // NULL is all the ABI allows here; the host shows the plugin's stderr with its error.
                eprintln!("vtcode plugin: metadata() panicked: {}", describe_panic(payload.as_ref()));
                std::ptr::null()
            }
        }
    }

    /// # Safety
    /// `ctx` must be NULL or a NUL-terminated string valid for the call.
    pub unsafe fn execute<P: Plugin>(ctx: *const c_char) -> *const c_char {
        install_panic_hook();
        let result = catch_unwind(AssertUnwindSafe(|| {
            if ctx.is_null() {
                return PluginResult::error("the host passed a NULL context");
            }
            let text = match CStr::from_ptr(ctx).to_str() {
                Ok(text) => text,
                Err(_) => return PluginResult::error("the context is not valid UTF-8"),
            };
            match Context::parse(text) {
                Ok(context) => P::execute(context),
                Err(err) => PluginResult::error(format!("the context is not valid JSON: {err}")),
            }
        }));
        let result = result.unwrap_or_else(|payload| PluginResult::error(format!("plugin panicked: {}", describe_panic(payload.as_ref()))));
        into_raw(result.to_json())
    }

    /// # Safety
    /// `s` must be NULL or a string returned by `metadata` or `execute` above, not yet freed.
    pub unsafe fn free_string(s: *const c_char) {
        if !s.is_null() {
            drop(CString::from_raw(s as *mut c_char));
        }
    }
}

/// Optional log lines (docs/abi.md "Logging"): one stderr line starting with a syslog level in
/// angle brackets. skillplug shows them in `dev` and `run --verbose`, keeps them for `logEvents()`
/// and forwards them to MCP clients; VT Code and other hosts see a plain stderr line. Without the
/// SDK it is one call: `eprintln!("<6>indexed {n} files")`.
pub mod log {
    use std::fmt;
    use std::io::Write;

    /// Syslog's levels, which are also MCP's: the number is the prefix (`<6>` is `Info`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Level {
        Emergency = 0,
        Alert = 1,
        Critical = 2,
        Error = 3,
        Warning = 4,
        Notice = 5,
        Info = 6,
        Debug = 7,
    }

    /// The line as written, without its newline: the prefix, then the text with line breaks as spaces.
    pub fn format_line(level: Level, text: &str) -> String {
        let mut line = format!("<{}>", level as u8);
        line.extend(text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }));
        line
    }

    /// Writes one log line to stderr in one write; a failed write is ignored (logging never fails a call).
    pub fn write(level: Level, args: fmt::Arguments) {
        let mut line = format_line(level, &args.to_string());
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// `plugin_log!(Level::Info, "indexed {} files", n)`: one log line at that level.
#[macro_export]
macro_rules! plugin_log {
    ($level:expr, $($arg:tt)*) => { $crate::log::write($level, ::std::format_args!($($arg)*)) };
}

/// `log_info!("…", …)`: a log line at level info.
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::plugin_log!($crate::log::Level::Info, $($arg)*) };
}

/// `log_warning!("…", …)`: a log line at level warning.
#[macro_export]
macro_rules! log_warning {
    ($($arg:tt)*) => { $crate::plugin_log!($crate::log::Level::Warning, $($arg)*) };
}

/// `log_error!("…", …)`: a log line at level error.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::plugin_log!($crate::log::Level::Error, $($arg)*) };
}

/// `log_debug!("…", …)`: a log line at level debug.
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::plugin_log!($crate::log::Level::Debug, $($arg)*) };
}

/// Exports the four ABI v1 symbols for a type implementing [`Plugin`].
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[no_mangle]
        pub extern "C" fn vtcode_plugin_version() -> u32 {
            $crate::ABI_VERSION
        }

        #[no_mangle]
        pub extern "C" fn vtcode_plugin_metadata() -> *const ::std::os::raw::c_char {
            $crate::ffi::metadata::<$plugin>()
        }

        /// # Safety
        /// Called by the host with a NUL-terminated context string.
        #[no_mangle]
        pub unsafe extern "C" fn vtcode_plugin_execute(ctx: *const ::std::os::raw::c_char) -> *const ::std::os::raw::c_char {
            $crate::ffi::execute::<$plugin>(ctx)
        }

        /// # Safety
        /// Called by the host with a string this plugin returned.
        #[no_mangle]
        pub unsafe extern "C" fn vtcode_plugin_free_string(s: *const ::std::os::raw::c_char) {
            $crate::ffi::free_string(s)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{CStr, CString};

    struct Panicky;
    impl Plugin for Panicky {
        fn metadata() -> Metadata {
            Metadata::new("panicky", "Panics on demand", "1.0.0").thread_safe(true)
        }
        fn execute(ctx: Context) -> PluginResult {
            if ctx.input.get("panic").and_then(Value::as_bool) == Some(true) {
                panic!("boom");
            }
            PluginResult::ok(Value::object([("ws", ctx.workspace_root.map(Value::String).unwrap_or(Value::Null))]))
        }
    }

    fn call(ctx: &str) -> Value {
        let c = CString::new(ctx).unwrap();
        unsafe {
            let out = ffi::execute::<Panicky>(c.as_ptr());
            let value = Value::parse(CStr::from_ptr(out).to_str().unwrap()).unwrap();
            ffi::free_string(out);
            value
        }
    }

    #[test]
    fn log_lines_carry_the_level_prefix_and_stay_one_line() {
        assert_eq!(log::format_line(log::Level::Info, "indexed 7 files"), "<6>indexed 7 files");
        assert_eq!(log::format_line(log::Level::Error, "two\nlines\r"), "<3>two lines ");
        assert_eq!(log::format_line(log::Level::Debug, ""), "<7>");
        // The macros compile and write (to the test's stderr).
        crate::log_warning!("{} left", 3);
        crate::plugin_log!(log::Level::Notice, "done");
    }

    #[test]
    fn a_panic_becomes_a_failed_result_with_its_message_and_location() {
        let r = call(r#"{"input":{"panic":true},"workspace_root":null,"config":{}}"#);
        assert_eq!(r.get("success"), Some(&Value::Bool(false)));
        let error = r.get("error").and_then(Value::as_str).unwrap();
        assert!(error.starts_with("plugin panicked: boom at "), "{error}");
        assert!(error.contains("src/lib.rs:"), "{error}");
        // The next call is served as usual and reports no stale panic.
        let ok = call(r#"{"input":{},"workspace_root":"/w","config":{}}"#);
        assert_eq!(ok.get("success"), Some(&Value::Bool(true)));
    }

    struct PanicsInMetadata;
    impl Plugin for PanicsInMetadata {
        fn metadata() -> Metadata {
            let parts: Vec<&str> = Vec::new();
            Metadata::new(parts[3], "unreachable", "1")
        }
        fn execute(_: Context) -> PluginResult {
            PluginResult::ok(Value::Null)
        }
    }

    #[test]
    fn a_panic_in_metadata_returns_null_and_leaves_no_stale_record() {
        assert!(ffi::metadata::<PanicsInMetadata>().is_null());
        assert!(ffi::LAST_PANIC.with(|last| last.borrow().is_none()));
    }

    #[test]
    fn bad_contexts_become_failed_results() {
        let r = call("not json");
        assert_eq!(r.get("success"), Some(&Value::Bool(false)));
        let ok = call(r#"{"input":{},"workspace_root":"/w","config":{}}"#);
        assert_eq!(ok.get("output").and_then(|o| o.get("ws")).and_then(Value::as_str), Some("/w"));
    }

    #[test]
    fn metadata_json_has_every_field() {
        let m = Value::parse(&Panicky::metadata().to_json()).unwrap();
        assert_eq!(m.get("abi_version").and_then(Value::as_u64), Some(1));
        assert_eq!(m.get("thread_safe"), Some(&Value::Bool(true)));
    }
}
