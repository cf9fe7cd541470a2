//! The annotated example configuration in the repository is valid.

#[test]
fn the_example_config_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hookauth.example.toml");
    // The example keeps the OAuth client secret out of the file, as it recommends.
    let env = vec![(
        "HOOKAUTH_OAUTH__PROVIDERS__GOOGLE__CLIENT_SECRET".to_owned(),
        "from-the-environment".to_owned(),
    )];
    let config =
        hookauth::config::Config::load(Some(&path), env, hookauth::config::Overrides::default())
            .expect("hookauth.example.toml is valid");
    assert_eq!(config.bind, "127.0.0.1:8000");
    assert!(config.profile_fields.contains_key("display_name"));
    let google = &config.oauth.providers["google"];
    assert_eq!(
        google.client_secret.as_ref().unwrap().expose(),
        "from-the-environment"
    );

    // Without the secret the start is refused, naming where to put it.
    let err = hookauth::config::Config::load(
        Some(&path),
        Vec::<(String, String)>::new(),
        hookauth::config::Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("HOOKAUTH_OAUTH__PROVIDERS__GOOGLE__CLIENT_SECRET"),
        "{err}"
    );
}
