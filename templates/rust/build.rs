// Checks plugin.json when cargo builds: a mistake in it fails the build, not the load.
fn main() {
    vtcode_plugin_sdk::build::check_plugin_json();
}
