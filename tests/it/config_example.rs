//! The annotated example configuration in the repository is valid.

#[test]
fn the_example_config_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hookauth.example.toml");
    let config = hookauth::config::Config::load(
        Some(&path),
        Vec::<(String, String)>::new(),
        hookauth::config::Overrides::default(),
    )
    .expect("hookauth.example.toml is valid");
    assert_eq!(config.bind, "127.0.0.1:8000");
    assert!(config.profile_fields.contains_key("display_name"));
}
