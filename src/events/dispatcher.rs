//! Placeholder until the outbox store lands.
pub struct Dispatcher;
pub struct DispatcherSettings;
