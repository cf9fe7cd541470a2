//! Tools for hook authors: [`scaffold`] (`hookauth hooks new`) and [`tools`] (`hookauth hooks
//! check|run|replay`).

pub mod scaffold;
pub mod tools;
