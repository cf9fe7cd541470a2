//! The `hookauth` binary; everything it does is in [`hookauth::cli`] (why: see `cli/run.rs`).

fn main() -> std::process::ExitCode {
    hookauth::cli::main()
}
